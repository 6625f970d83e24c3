"""Metric names, labels and values after known calls on the fake switch (SDK in-memory reader)."""

from __future__ import annotations

import functools
import gc

import pytest
import trio
import trio.testing
from opentelemetry.sdk.metrics.export import HistogramDataPoint

from genesis_trio import (
    AuthenticationError,
    Channel,
    Event,
    Inbound,
    OperationTimeout,
    OriginateError,
    Outbound,
    Session,
)
from genesis_trio.group import InMemoryLoadBalancer, RingGroup, RingMode
from genesis_trio.queue import Queue, QueueTimeoutError
from genesis_trio.testing import Destination, FakeFreeSWITCH
from outbound_serving import serving

from .conftest import Metrics, Recorded
from .test_lifecycle_captures import replay

pytestmark = pytest.mark.trio


def by_labels(metrics: Metrics, name: str) -> dict[tuple[tuple[str, object], ...], float]:
    """``{sorted label items: value}`` (a histogram's value is its count of recordings)."""
    points: dict[tuple[tuple[str, object], ...], float] = {}
    for labels, value in metrics.points(name):
        key = tuple(sorted(labels.items()))
        points[key] = points.get(key, 0.0) + value
    return points


def every_label_value(metrics: Metrics) -> set[str]:
    data = metrics.reader.get_metrics_data()
    assert data is not None
    return {
        str(value)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        for value in (point.attributes or {}).values()
    }


async def test_three_calls_busy_answered_and_dtmf(
    fake: FakeFreeSWITCH, metrics: Metrics, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=3))
    fake.add_destination("user/1001", Destination(reject_cause="USER_BUSY"))
    fake.add_destination("user/1002", Destination(answer_after=0))
    digits_handled: list[str] = []
    all_digits = trio.Event()

    async def on_dtmf(event: Event) -> None:
        digits_handled.append(event["DTMF-Digit"])
        if len(digits_handled) == 3:
            all_digits.set()

    async with Inbound(fake.host, fake.port, meter_provider=metrics.provider) as client:
        await client.events("ALL")
        client.on("DTMF", on_dtmf)
        async with client.subscribe("CHANNEL_DESTROY", request=False) as destroyed:
            answered = await Channel.create(client, "user/1000")
            await answered.hangup()
            with pytest.raises(OriginateError):
                await Channel.create(client, "user/1001")
            pressing = await Channel.create(client, "user/1002")
            await pressing.playback("ivr/welcome.wav")
            fake.send_dtmf(pressing.uuid, "12#")
            with trio.fail_after(60):
                await all_digits.wait()
            await pressing.hangup()
            legs = len(fake.channel_history)
            with trio.fail_after(60):
                gone = 0
                async for _ in destroyed:
                    gone += 1
                    if gone == legs:
                        break
        uuids = {leg.uuid for leg in fake.channel_history}
        assert len(uuids) == legs == 3

    # Channels: created and destroyed, by direction only.
    active = by_labels(metrics, "genesis.calls.active")
    assert active == {(("direction", "outbound"),): 0.0}
    # Hangup causes, by name, and by name with the Q.850 code.
    assert by_labels(metrics, "genesis.channel.hangup.causes") == {
        (("hangup.cause", "NORMAL_CLEARING"),): 2.0,
        (("hangup.cause", "USER_BUSY"),): 1.0,
    }
    assert by_labels(metrics, "genesis.channel.hangup.causes.q850") == {
        (("hangup.cause", "NORMAL_CLEARING"), ("hangup.cause.q850", "16")): 2.0,
        (("hangup.cause", "USER_BUSY"), ("hangup.cause.q850", "17")): 1.0,
    }
    assert by_labels(metrics, "genesis.call.duration") == {
        (("direction", "outbound"), ("hangup.cause", "NORMAL_CLEARING")): 2.0,
        (("direction", "outbound"), ("hangup.cause", "USER_BUSY")): 1.0,
    }
    # Ring time: the two answered calls.
    assert by_labels(metrics, "genesis.call.ring.duration") == {(("direction", "outbound"),): 2.0}
    # DTMF: three digits, counted by source, never by digit.
    dtmf = by_labels(metrics, "genesis.channel.dtmf.received")
    assert sum(dtmf.values()) == 3
    assert {key[0][0] for key in dtmf} == {"dtmf.source"}
    # The handler ran three times and returned.
    assert by_labels(metrics, "genesis.consumer.handlers") == {
        (("event.name", "DTMF"), ("result", "ok")): 3.0
    }
    assert by_labels(metrics, "genesis.consumer.handler.duration") == {
        (("event.name", "DTMF"), ("result", "ok")): 3.0
    }
    # Channel operations: two calls created, one refused (busy), two hung up by us.
    operations = by_labels(metrics, "genesis.channel.operations")
    assert operations[(("operation", "create"), ("result", "success"))] == 2
    assert operations[(("operation", "create"), ("result", "error"))] == 1
    assert operations[(("operation", "hangup"), ("result", "success"))] == 2
    assert operations[(("operation", "playback"), ("result", "success"))] == 1
    assert by_labels(metrics, "genesis.session.commands") == {
        (("application.name", "playback"), ("result", "success")): 1.0
    }
    # Every event the reader routed was timed, once.
    received = metrics.total("genesis.events.received")
    assert metrics.total("genesis.event.processing.duration") == received > 0
    # Commands: each one sent once, timed once.
    sent = by_labels(metrics, "genesis.commands.sent")
    assert sent[(("command", "bgapi"),)] >= 3  # the three originates
    assert metrics.total("genesis.commands.duration") == sum(sent.values())
    # Nothing waits once the calls are over; the connection is closed.
    assert by_labels(metrics, "genesis.commands.queue.depth") == {(("type", "inbound"),): 0.0}
    assert by_labels(metrics, "genesis.events.queue.depth") == {(("type", "inbound"),): 0.0}
    assert by_labels(metrics, "genesis.connections.active") == {(("type", "inbound"),): 0.0}
    assert not by_labels(metrics, "genesis.connections.errors")
    # Low cardinality: no uuid, dial path or digit in any label value.
    values = every_label_value(metrics)
    assert not values & uuids
    assert not {v for v in values if "user/" in v or "1000" in v or "#" in v}


async def test_the_depth_gauges_see_waiting_commands_and_events(
    fake: FakeFreeSWITCH, metrics: Metrics
) -> None:
    async with Inbound(fake.host, fake.port, meter_provider=metrics.provider) as client:
        async with (
            client.subscribe("test::metrics") as custom,
            client.subscribe("test::marker") as marker,
        ):
            for _ in range(5):
                fake.fire(fake.build_event("CUSTOM", subclass="test::metrics"))
            fake.fire(fake.build_event("CUSTOM", subclass="test::marker"))
            # Events arrive in order: once the marker is here the five wait in their queue.
            with trio.fail_after(60):
                async for _ in marker:
                    break
            assert by_labels(metrics, "genesis.events.queue.depth") == {(("type", "inbound"),): 5.0}
            async for _ in custom:
                break
            assert by_labels(metrics, "genesis.events.queue.depth") == {(("type", "inbound"),): 4.0}
        assert by_labels(metrics, "genesis.commands.queue.depth") == {(("type", "inbound"),): 0.0}


async def test_timeouts_are_counted_by_operation(
    fake: FakeFreeSWITCH, metrics: Metrics, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=600))
    async with Inbound(fake.host, fake.port, meter_provider=metrics.provider) as client:
        with pytest.raises(TimeoutError):
            await Channel.create(client, "user/1000", timeout=5)
    assert by_labels(metrics, "genesis.timeouts") == {(("operation", "create"),): 1.0}
    operations = by_labels(metrics, "genesis.channel.operations")
    assert operations[(("operation", "create"), ("result", "timeout"))] == 1


async def test_connection_errors(metrics: Metrics) -> None:
    async with FakeFreeSWITCH(password="secret").running() as fake:
        with pytest.raises(AuthenticationError):
            async with Inbound(fake.host, fake.port, "wrong", meter_provider=metrics.provider):
                pass
        client = Inbound(fake.host, fake.port, "secret", meter_provider=metrics.provider)
        async with client:
            await fake.drop_connections()
            with trio.fail_after(60):
                await client.connection.closed.wait()
        port = fake.port
    # Nobody listens on the port any more.
    with pytest.raises(Exception):  # noqa: B017 - ConnectionLost
        async with Inbound("127.0.0.1", port, meter_provider=metrics.provider):
            pass
    assert by_labels(metrics, "genesis.connections.errors") == {
        (("error", "authentication_failed"), ("type", "inbound")): 1.0,
        (("error", "connection_lost"), ("type", "inbound")): 1.0,
        (("error", "connect_failed"), ("type", "inbound")): 1.0,
    }


async def test_record_reconnect_and_connection_error_helpers(metrics: Metrics) -> None:
    from genesis_trio import tracing

    tracing.record_reconnect("inbound", succeeded=False, meter_provider=metrics.provider)
    tracing.record_reconnect("inbound", succeeded=True, meter_provider=metrics.provider)
    tracing.record_connection_error(
        "inbound", ConnectionRefusedError(), meter_provider=metrics.provider
    )
    assert by_labels(metrics, "genesis.connections.reconnects") == {
        (("result", "failure"), ("type", "inbound")): 1.0,
        (("result", "success"), ("type", "inbound")): 1.0,
    }
    assert by_labels(metrics, "genesis.connections.errors") == {
        (("error", "refused"), ("type", "inbound")): 1.0
    }


async def test_queue_waits_depth_and_timeouts(
    metrics: Metrics, autojump_clock: trio.testing.MockClock
) -> None:
    queue = Queue(meter_provider=metrics.provider)
    holding = trio.Event()
    release = trio.Event()

    async def holder() -> None:
        async with queue.slot("support", max_concurrent=1):
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with queue.slot("support", max_concurrent=1):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
        await holding.wait()
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert metrics.total("genesis.queue.waiting") == 1
        with pytest.raises(QueueTimeoutError):
            async with queue.slot("support", max_concurrent=1, timeout=10):
                pass
        await trio.sleep(30)
        release.set()
    assert metrics.total("genesis.queue.waiting") == 0
    assert by_labels(metrics, "genesis.queue.wait_duration") == {
        (("result", "acquired"),): 2.0,
        (("result", "timeout"),): 1.0,
    }
    assert by_labels(metrics, "genesis.queue.operations") == {
        (("op", "acquire"),): 2.0,
        (("op", "release"),): 2.0,
    }
    assert by_labels(metrics, "genesis.timeouts") == {(("operation", "queue.wait"),): 1.0}
    # The waiter's wait (about 40 s on the mock clock) lands in a bucket past 30 s.
    data = metrics.reader.get_metrics_data()
    assert data is not None
    (wait,) = (
        m
        for r in data.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
        if m.name == "genesis.queue.wait_duration"
    )
    acquired = next(p for p in wait.data.data_points if p.attributes == {"result": "acquired"})
    assert isinstance(acquired, HistogramDataPoint)
    assert acquired.max > 30
    assert acquired.explicit_bounds[:3] == (0.01, 0.1, 0.5)


class _BrokenBalancer(InMemoryLoadBalancer):
    async def least_loaded(self, keys: object) -> str:
        raise RuntimeError("the balancer's store is down")


async def test_ring_groups_and_load_balancer_picks(
    fake: FakeFreeSWITCH, metrics: Metrics, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=4))
    fake.add_destination("user/1001", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port, meter_provider=metrics.provider) as client:
        answered = await RingGroup.ring(client, ["user/1000", "user/1001"], timeout=20)
        assert answered is not None
        await answered.hangup()
        balancer = InMemoryLoadBalancer()
        picked = await RingGroup.ring(
            client, ["user/1000"], RingMode.BALANCING, balancer=balancer, timeout=20
        )
        assert picked is not None
        await picked.hangup()
        with pytest.raises(RuntimeError):
            await RingGroup.ring(
                client, ["user/1000"], RingMode.BALANCING, balancer=_BrokenBalancer(), timeout=20
            )
    assert by_labels(metrics, "genesis.ring_group.results") == {
        (("mode", "parallel"), ("result", "answered")): 1.0,
        (("mode", "balancing"), ("result", "answered")): 1.0,
        (("mode", "balancing"), ("result", "error")): 1.0,
    }
    assert by_labels(metrics, "genesis.ring_group.operation.duration") == by_labels(
        metrics, "genesis.ring_group.results"
    )
    assert by_labels(metrics, "genesis.loadbalancer.selections") == {
        (("loadbalancer.backend", "InMemoryLoadBalancer"), ("loadbalancer.result", "selected")): 1.0
    }
    assert by_labels(metrics, "genesis.loadbalancer.errors") == {
        (("error", "RuntimeError"), ("loadbalancer.backend", "_BrokenBalancer")): 1.0
    }


async def test_instruments_are_created_once_per_provider(metrics: Metrics) -> None:
    from genesis_trio.tracing._metrics import instruments_for

    assert instruments_for(metrics.provider) is instruments_for(metrics.provider)


async def test_bridge_codec_and_application_metrics_from_a_real_capture(
    recorded: Recorded, metrics: Metrics
) -> None:
    # Events a real FreeSWITCH sent for two calls, one of them bridged (see _replay.py).
    await replay("plain", recorded, metrics)
    assert by_labels(metrics, "genesis.channel.bridge.events") == {
        (("bridge.result", "established"),): 1.0,
        # FreeSWITCH's CHANNEL_UNBRIDGE of a live leg has no Hangup-Cause yet.
        (("bridge.result", "unbridged"),): 1.0,
    }
    codecs = by_labels(metrics, "genesis.channel.codec.changes")
    assert sum(codecs.values()) == 8
    assert {k for key in codecs for k, _ in key} == {"channel.read_codec", "channel.write_codec"}
    assert by_labels(metrics, "genesis.call.ring.duration")
    # Metrics only: tracing spans do not decide what is counted.
    assert metrics.total("genesis.dialplan.applications") == 14 + 12


async def test_transfers_are_counted_by_role_and_type(
    fake: FakeFreeSWITCH, metrics: Metrics
) -> None:
    leg = [("Unique-ID", "leg-a"), ("Channel-Call-UUID", "leg-a")]
    async with Inbound(fake.host, fake.port, meter_provider=metrics.provider) as client:
        await client.events("CUSTOM", "sofia::transferor", "sofia::transferee")
        async with client.subscribe("CHANNEL_ANSWER") as answers:
            fake.fire(fake.build_event("CUSTOM", leg, subclass="sofia::transferor"))
            refer = [*leg, ("variable_sip_refer_to", "<sip:1000@x?Replaces=abc>")]
            fake.fire(fake.build_event("CUSTOM", refer, subclass="sofia::transferor"))
            fake.fire(fake.build_event("CUSTOM", leg, subclass="sofia::transferee"))
            fake.fire(fake.build_event("CHANNEL_ANSWER", leg))
            with trio.fail_after(60):  # in order: the answer comes after the three
                async for _ in answers:
                    break
    assert by_labels(metrics, "genesis.channel.transfers") == {
        (("transfer.role", "transferor"), ("transfer.type", "blind")): 1.0,
        (("transfer.role", "transferor"), ("transfer.type", "attended")): 1.0,
        (("transfer.role", "transferee"), ("transfer.type", "attended")): 1.0,
    }


async def test_outbound_calls_count_connections_and_failed_calls(
    fake: FakeFreeSWITCH, metrics: Metrics
) -> None:
    calls = 0

    async def handler(session: Session) -> None:
        nonlocal calls
        calls += 1
        await session.channel.answer()
        if calls == 2:
            raise RuntimeError("the app failed")
        await session.channel.hangup()

    app = Outbound(handler, port=0, meter_provider=metrics.provider)
    with trio.fail_after(60):
        async with serving(app) as address:
            for _ in range(2):
                call = await fake.call_socket(address)
                await call.wait_ended()
            while by_labels(metrics, "genesis.connections.active").get((("type", "outbound"),)):
                await trio.testing.wait_all_tasks_blocked()
    # A socket FreeSWITCH closes after the call is not an error; the app's exception is.
    assert by_labels(metrics, "genesis.connections.errors") == {
        (("error", "RuntimeError"), ("type", "outbound")): 1.0
    }
    assert (
        by_labels(metrics, "genesis.channel.operations")[
            (("operation", "answer"), ("result", "success"))
        ]
        == 2
    )


async def test_a_reconnecting_inbound_counts_the_loss_and_the_reconnect(
    metrics: Metrics, autojump_clock: trio.testing.MockClock
) -> None:
    async with FakeFreeSWITCH().running() as fake:
        async with Inbound(
            fake.host, fake.port, meter_provider=metrics.provider, reconnect=True
        ) as client:
            first = client.connection
            await fake.drop_connections()
            with trio.fail_after(60):
                await first.closed.wait()
                await client.wait_ready()
            await client.api("status")
        assert by_labels(metrics, "genesis.connections.errors") == {
            (("error", "connection_lost"), ("type", "inbound")): 1.0
        }
        assert by_labels(metrics, "genesis.connections.reconnects") == {
            (("result", "success"), ("type", "inbound")): 1.0
        }
        # Both connections were counted open, then closed.
        assert by_labels(metrics, "genesis.connections.active") == {(("type", "inbound"),): 0.0}


async def test_a_command_without_a_reply_is_waiting_then_timed_out(metrics: Metrics) -> None:
    # A switch that authenticates and then never answers: the command waits for its reply.
    async def silent_switch(stream: trio.SocketStream) -> None:
        await stream.send_all(b"Content-Type: auth/request\n\n")
        await stream.receive_some()  # auth ...
        await stream.send_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
        await stream.receive_some()  # the api, never answered
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, silent_switch, 0, host="127.0.0.1")
        (listener,) = await nursery.start(serve)
        port = listener.socket.getsockname()[1]
        async with Inbound("127.0.0.1", port, meter_provider=metrics.provider) as client:
            waiting: list[float] = []

            async def look() -> None:
                await trio.testing.wait_all_tasks_blocked()
                waiting.append(metrics.total("genesis.commands.queue.depth"))

            nursery.start_soon(look)
            with pytest.raises(OperationTimeout):
                await client.api("status", timeout=2)
            assert waiting == [1.0]
            # Still unanswered on the wire: its reply slot stays so later replies match.
            assert metrics.total("genesis.commands.queue.depth") == 1
        nursery.cancel_scope.cancel()
    assert by_labels(metrics, "genesis.timeouts") == {(("operation", "command"),): 1.0}
    errors = by_labels(metrics, "genesis.commands.errors")
    assert errors[(("command", "api"), ("error", "OperationTimeout"))] == 1
    # Leaving says exit, which this switch never answers either: the goodbye gives up.
    assert errors[(("command", "exit"), ("error", "cancelled"))] == 1


def _tallies_kept(metrics: Metrics) -> int:
    """The per-connection tallies this test's provider still holds after a collection.

    Only this provider's: connections of other tests (other providers) may still be
    waiting for their own provider's next collection, so counting every tally in the
    process made the test depend on what ran before it.
    """
    from genesis_trio.tracing._metrics import instruments_for

    gc.collect()
    instruments = instruments_for(metrics.provider)
    assert instruments is not None
    metrics.reader.get_metrics_data()  # a collection folds the tallies of connections gone
    return len(instruments._live_tallies) + len(instruments._dead_tallies)


async def test_per_event_counts_outlive_their_connections(
    fake: FakeFreeSWITCH, metrics: Metrics
) -> None:
    # Per-event counters are counted by each connection and reported when a reader
    # collects: a connection gone must leave its counts in the totals, and nothing per
    # connection behind.
    for round_ in range(1, 4):
        for _ in range(5):
            client = Inbound(fake.host, fake.port, meter_provider=metrics.provider)
            async with client, client.subscribe("HEARTBEAT") as events:
                fake.fire(fake.build_event("HEARTBEAT"))
                with trio.fail_after(30):
                    await events.__anext__()
            del client, events
        assert (
            by_labels(metrics, "genesis.events.received")[(("event.name", "HEARTBEAT"),)]
            == 5 * round_
        )
    gc.collect()  # the connections gone: their counts move into the totals when read
    assert by_labels(metrics, "genesis.events.received") == {(("event.name", "HEARTBEAT"),): 15}
    assert _tallies_kept(metrics) == 0


async def test_command_counts_are_per_verb_and_outlive_their_connections(
    fake: FakeFreeSWITCH, metrics: Metrics
) -> None:
    # genesis.commands.sent is counted by each connection and reported when a reader
    # collects: every command with a reply counts once under its verb, while the
    # connection lives and after it is gone.
    expected: dict[str, int] = {}
    for round_ in range(1, 4):
        async with Inbound(fake.host, fake.port, meter_provider=metrics.provider) as client:
            for _ in range(round_):
                await client.api("status")
            await client.bgapi("status")
            sent = by_labels(metrics, "genesis.commands.sent")
            # Reported while the connection is open too.
            assert sent[(("command", "api"),)] == expected.get("api", 0) + round_
        del client
        gc.collect()
        expected["api"] = expected.get("api", 0) + round_
        expected["bgapi"] = expected.get("bgapi", 0) + 1
        sent = by_labels(metrics, "genesis.commands.sent")
        assert sent[(("command", "api"),)] == expected["api"]
        assert sent[(("command", "bgapi"),)] == expected["bgapi"]
        # Each connection authenticated once and said exit once.
        assert sent[(("command", "auth"),)] == round_
        assert sent[(("command", "exit"),)] == round_
    # The duration histogram still sees every command that got a reply.
    assert metrics.total("genesis.commands.duration") == sum(sent.values())
