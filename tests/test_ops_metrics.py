"""``GET /metrics`` of an app with the ops server, after known calls: names, labels, values.

On the fake switch and on a real one; the Prometheus text is parsed back with
prometheus_client's parser (a dependency of opentelemetry-exporter-prometheus).
"""

from __future__ import annotations

import re
from collections import Counter

import httpx
import pytest
import trio

from cli_process import free_port
from genesis_trio import Channel, Event, Inbound, OpsServer, OriginateError
from genesis_trio.testing import Destination, FakeFreeSWITCH
from ops_scrape import Samples, label_keys, label_values, prometheus_provider, scrape, total, values
from real_switch import RealSwitch

pytestmark = pytest.mark.trio

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class CallLog:
    """What the switch said about the calls, from its events: the metrics must agree."""

    def __init__(self) -> None:
        self.created: set[str] = set()
        self.destroyed: set[str] = set()
        self.causes: Counter[tuple[str, str]] = Counter()
        self.dtmf = 0
        self.changed = trio.Event()

    def see(self, event: Event) -> None:
        uuid = event.get("Unique-ID") or ""
        if event.name == "CHANNEL_CREATE":
            self.created.add(uuid)
        elif event.name == "CHANNEL_DESTROY":
            self.destroyed.add(uuid)
        elif event.name == "CHANNEL_HANGUP_COMPLETE":
            cause = event.get("Hangup-Cause") or ""
            self.causes[(cause, event.get("variable_hangup_cause_q850") or "")] += 1
        elif event.name == "DTMF":
            self.dtmf += 1
        self.changed.set()
        self.changed = trio.Event()

    async def wait(self, done: object) -> None:
        with trio.fail_after(60):
            while not done():  # type: ignore[operator]
                await self.changed.wait()


async def watch(client: Inbound, log: CallLog, task_status: trio.TaskStatus[None]) -> None:
    names = ("CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_HANGUP_COMPLETE", "DTMF")
    async with client.subscribe(*names) as events:
        task_status.started()
        async for event in events:
            log.see(event)


def check_calls(samples: Samples, log: CallLog, uuids: set[str]) -> None:
    """The scrape says what the events said, with low-cardinality labels only."""
    causes: Counter[str] = Counter()
    for (cause, _), count in log.causes.items():
        causes[cause] += count
    for cause, count in causes.items():
        assert total(samples, "genesis_channel_hangup_causes_total", hangup_cause=cause) == count
    for (cause, q850), count in log.causes.items():
        assert (
            total(
                samples,
                "genesis_channel_hangup_causes_q850_total",
                hangup_cause=cause,
                hangup_cause_q850=q850,
            )
            == count
        )
    legs = sum(log.causes.values())
    assert total(samples, "genesis_call_duration_seconds_count") == legs
    # The explicit bucket boundaries reached the exporter.
    buckets = {dict(k)["le"] for k in values(samples, "genesis_call_duration_seconds_bucket")}
    assert {"1.0", "60.0", "7200.0", "+Inf"} <= buckets
    latency = {dict(k)["le"] for k in values(samples, "genesis_commands_duration_seconds_bucket")}
    assert {"0.001", "10.0"} <= latency
    assert total(samples, "genesis_channel_dtmf_received_total") == log.dtmf == 3
    assert label_keys(samples, "genesis_channel_dtmf_received_total") == {"dtmf_source"}
    # Every channel created was destroyed again.
    assert total(samples, "genesis_calls_active") == 0
    assert values(samples, "genesis_calls_active")
    assert total(samples, "genesis_commands_sent_total", command="bgapi") >= 3
    assert total(samples, "genesis_connections_active", type="inbound") == 1
    assert total(samples, "genesis_commands_queue_depth", type="inbound") == 0
    assert total(samples, "genesis_event_processing_duration_seconds_count") >= legs
    # Never a uuid, a dial string or a digit pressed.
    labels = label_values(samples)
    assert not labels & uuids
    assert not [v for v in labels if UUID.search(v) or "/" in v or "#" in v]


async def three_calls(
    client: Inbound, log: CallLog, answered: str, busy: str, pressing: str, send_dtmf: object
) -> None:
    """One answered and hung up (NORMAL_CLEARING), one busy, one answered pressing 1 2 #."""
    channel = await Channel.create(client, answered)
    await channel.hangup()
    with pytest.raises(OriginateError) as refused:
        await Channel.create(client, busy)
    assert refused.value.cause == "USER_BUSY"
    channel = await Channel.create(client, pressing)
    await send_dtmf(channel, "12#")  # type: ignore[operator]
    await log.wait(lambda: log.dtmf >= 3)
    await channel.hangup()
    await log.wait(lambda: log.created and log.created <= log.destroyed)


async def test_metrics_after_known_calls_on_the_fake(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("user/1000", Destination(answer_after=0))
    fake.add_destination("user/1001", Destination(reject_cause="USER_BUSY"))
    fake.add_destination("user/1002", Destination(answer_after=0))

    async def press(channel: Channel, digits: str) -> None:
        fake.send_dtmf(channel.uuid, digits)

    log = CallLog()
    with prometheus_provider() as (provider, registry):
        async with (
            Inbound(fake.host, fake.port, meter_provider=provider) as client,
            trio.open_nursery() as nursery,
        ):
            ops = OpsServer(client, port=free_port(), registry=registry)
            host, port = await nursery.start(ops.serve)
            await nursery.start(watch, client, log)
            await three_calls(client, log, "user/1000", "user/1001", "user/1002", press)
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
                samples = await scrape(http)
            nursery.cancel_scope.cancel()
    assert log.causes == {("NORMAL_CLEARING", "16"): 2, ("USER_BUSY", "17"): 1}
    check_calls(samples, log, {leg.uuid for leg in fake.channel_history})
    # The fake's legs are plain channels, one per call: the ring time of the two answered.
    assert total(samples, "genesis_call_ring_duration_seconds_count", direction="outbound") == 2
    assert (
        total(samples, "genesis_channel_operations_total", operation="create", result="success")
        == 2
    )
    assert (
        total(samples, "genesis_channel_operations_total", operation="create", result="error") == 1
    )


async def test_metrics_after_known_calls_on_the_real_switch(
    private_freeswitch: RealSwitch,
) -> None:
    async def press(channel: Channel, digits: str) -> None:
        await client.api(f"uuid_send_dtmf {channel.uuid} {digits}")

    log = CallLog()
    with prometheus_provider() as (provider, registry):
        async with (
            private_freeswitch.inbound(meter_provider=provider) as client,
            trio.open_nursery() as nursery,
        ):
            ops = OpsServer(client, port=free_port(), registry=registry)
            host, port = await nursery.start(ops.serve)
            await nursery.start(watch, client, log)
            await three_calls(
                client,
                log,
                "loopback/9002/default",
                "loopback/9005/default",
                "loopback/9007/default",
                press,
            )
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
                samples = await scrape(http)
            uuids = set(log.created)
            nursery.cancel_scope.cancel()
    # A loopback call is two legs; both end with the call's cause.
    assert log.causes[("NORMAL_CLEARING", "16")] >= 2
    assert log.causes[("USER_BUSY", "17")] >= 1
    check_calls(samples, log, uuids)
    # Digits injected with uuid_send_dtmf: FreeSWITCH says their source is UNKNOWN.
    assert total(samples, "genesis_channel_dtmf_received_total", dtmf_source="UNKNOWN") == 3
    assert total(samples, "genesis_call_ring_duration_seconds_count") >= 2
    assert total(samples, "genesis_dialplan_applications_total", application_name="park") >= 2
