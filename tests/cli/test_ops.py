"""``/health``, ``/ready``, ``/metrics`` of a running ``genesis-trio consumer|outbound``."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
import trio

from cli_process import OUTBOUND_LISTENING, cli_process, free_port, listening_address
from genesis_trio import Channel, Inbound, OriginateError
from genesis_trio.testing import Destination, FakeFreeSWITCH
from ops_scrape import (
    Samples,
    label_keys,
    label_values,
    ready_with_heartbeats,
    scrape,
    total,
    wait_for_status,
)
from waiting import wait_until

pytestmark = pytest.mark.trio

CONSUMER_APP = """\
from genesis_trio import Consumer, Event

app = Consumer(reconnect=True, max_backoff=0.5)

@app.handle("CHANNEL_ANSWER")
async def answered(event: Event) -> None:
    pass
"""

OUTBOUND_APP = """\
from genesis_trio import Outbound, Session

async def handler(session: Session) -> None:
    await session.channel.answer()
    print("answered", flush=True)
    await session.channel.wait("CHANNEL_HANGUP")

app = Outbound(handler)
"""


async def status_of(client: httpx.AsyncClient, path: str) -> int:
    return (await client.get(path)).status_code


async def heartbeat_until_ready(fake: FakeFreeSWITCH, client: httpx.AsyncClient) -> None:
    async def heartbeat() -> None:
        fake.fire(fake.build_event("HEARTBEAT"))

    await ready_with_heartbeats(client, heartbeat)


async def test_consumer_outage_and_return(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(CONSUMER_APP)
    ops_port = free_port()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as client:
        first = FakeFreeSWITCH()
        async with trio.open_nursery() as switch:
            await switch.start(first.serve)
            env = {"ESL_PORT": str(first.port), "ESL_OPS_PORT": str(ops_port)}
            app = str(tmp_path / "app.py")
            async with cli_process("--log-level", "info", "consumer", app, env=env) as cli:
                await cli.wait_for_line("ops endpoints on")
                assert await status_of(client, "/health") == 200
                await heartbeat_until_ready(first, client)
                metrics = (await client.get("/metrics")).text
                assert "genesis_events_received" in metrics
                assert "HEARTBEAT" in metrics

                switch.cancel_scope.cancel()  # FreeSWITCH is gone
                await wait_for_status(client, "/ready", 503)
                assert (await client.get("/ready")).json() == {"status": "not ready"}
                assert await status_of(client, "/health") == 200

                # It comes back on the same port: the consumer reconnects, readiness returns.
                second = FakeFreeSWITCH(port=first.port)
                async with trio.open_nursery() as again:
                    await again.start(second.serve)
                    await heartbeat_until_ready(second, client)
                    cli.signal(signal.SIGTERM)
                    assert await cli.wait() == 0
                    again.cancel_scope.cancel()


async def test_outbound_ready_until_it_drains_and_metrics_count_the_call(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(OUTBOUND_APP)
    ops_port = free_port()
    async with (
        FakeFreeSWITCH().running() as fake,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as client,
        cli_process(
            "--log-level", "info", "outbound", str(tmp_path / "app.py"), "--port", "0",
            "--ops-port", str(ops_port),
        ) as cli,
    ):  # fmt: skip
        address = listening_address(await cli.wait_for_line(OUTBOUND_LISTENING))
        await wait_for_status(client, "/ready", 200)
        channel = await fake.call_socket(address)
        await cli.wait_for_line("answered", stream="stdout")
        metrics = (await client.get("/metrics")).text
        assert "genesis_commands_sent" in metrics
        cli.signal(signal.SIGTERM)
        # Draining with a live call: not ready (no new calls), healthy.
        await wait_for_status(client, "/ready", 503)
        assert await status_of(client, "/health") == 200
        channel.request_hangup()
        assert await cli.wait() == 0


async def test_ops_port_in_use_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(OUTBOUND_APP)
    async with FakeFreeSWITCH().running() as fake:
        args = ("outbound", str(tmp_path / "app.py"), "--port", "0", "--ops-port", str(fake.port))
        async with cli_process(*args) as cli:
            assert await cli.wait() == 1
    assert len(cli.stderr_lines) == 1, cli.output
    assert "in use" in cli.stderr_lines[0]


PLAIN_CONSUMER_APP = """\
from genesis_trio import Consumer, Event

app = Consumer()

@app.handle("CHANNEL_ANSWER")
async def answered(event: Event) -> None:
    pass
"""


async def test_esl_reconnect_turns_reconnecting_on_for_an_app_without_it(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PLAIN_CONSUMER_APP)
    ops_port = free_port()
    async with (
        FakeFreeSWITCH().running() as fake,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as http,
    ):
        env = {
            "ESL_PORT": str(fake.port),
            "ESL_OPS_PORT": str(ops_port),
            "ESL_RECONNECT": "1",
            "ESL_LIVENESS_TIMEOUT": "60",
        }
        app = str(tmp_path / "app.py")
        async with cli_process("--log-level", "info", "consumer", app, env=env) as cli:
            await cli.wait_for_line("ops endpoints on")
            # Up: subscribed (after the liveness watchdog's HEARTBEAT), an event seen. Only
            # then does the Inbound reconnect by itself: a drop while the first subscribe
            # is still unanswered is a failed first connect, retried as such.
            await heartbeat_until_ready(fake, http)
            # (the readiness probe's HEARTBEAT handler joins the app's subscription)
            assert "event plain CHANNEL_ANSWER HEARTBEAT" in fake.commands_received
            await fake.drop_connections()
            await cli.wait_for_line("reconnected to")
            # Everything asked for again on the new connection, in one command.
            assert fake.commands_received[-1] == "event plain HEARTBEAT CHANNEL_ANSWER"
            cli.signal(signal.SIGTERM)
            assert await cli.wait() == 0


CONSUMER_METRICS_APP = """\
from genesis_trio import Consumer, Event

app = Consumer()

@app.handle("CHANNEL_CREATE")
@app.handle("CHANNEL_HANGUP")
@app.handle("CHANNEL_HANGUP_COMPLETE")
@app.handle("CHANNEL_DESTROY")
@app.handle("DTMF")
async def seen(event: Event) -> None:
    pass
"""


async def test_consumer_metrics_after_known_calls(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(CONSUMER_METRICS_APP)
    ops_port = free_port()
    async with (
        FakeFreeSWITCH().running() as fake,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as http,
    ):
        fake.add_destination("user/1000", Destination(answer_after=0))
        fake.add_destination("user/1001", Destination(reject_cause="USER_BUSY"))
        env = {"ESL_PORT": str(fake.port), "ESL_OPS_PORT": str(ops_port)}
        app = str(tmp_path / "app.py")
        async with cli_process("--log-level", "info", "consumer", app, env=env) as cli:
            await cli.wait_for_line("ops endpoints on")
            await heartbeat_until_ready(fake, http)
            async with Inbound(fake.host, fake.port) as caller:
                channel = await Channel.create(caller, "user/1000")
                fake.send_dtmf(channel.uuid, "42")
                await channel.hangup()
                with pytest.raises(OriginateError):
                    await Channel.create(caller, "user/1001")
            # The consumer is another process: its scrape is polled until both calls are over.
            samples: Samples = {}

            async def both_calls_counted() -> bool:
                nonlocal samples
                samples = await scrape(http)
                ended = total(samples, "genesis_consumer_handlers_total", result="ok")
                # Two calls: two of each channel event, and two digits.
                return ended >= 10 and not total(samples, "genesis_calls_active")

            await wait_until(both_calls_counted, within=60)
            cli.signal(signal.SIGTERM)
            assert await cli.wait() == 0
    assert (
        total(samples, "genesis_channel_hangup_causes_total", hangup_cause="NORMAL_CLEARING") == 1
    )
    assert total(samples, "genesis_channel_hangup_causes_total", hangup_cause="USER_BUSY") == 1
    assert label_keys(samples, "genesis_channel_hangup_causes_total") == {"hangup_cause"}
    assert total(samples, "genesis_channel_hangup_causes_q850_total", hangup_cause_q850="17") == 1
    assert total(samples, "genesis_call_duration_seconds_count", direction="outbound") == 2
    assert total(samples, "genesis_channel_dtmf_received_total") == 2
    assert label_keys(samples, "genesis_channel_dtmf_received_total") == {"dtmf_source"}
    for event in ("CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "DTMF"):
        assert total(samples, "genesis_consumer_handlers_total", event_name=event) == 2
    assert total(samples, "genesis_connections_active", type="inbound") == 1
    assert not [v for v in label_values(samples) if "user/" in v or v in {"4", "42"}]
