"""The operation helpers (channel.*, ring_group.ring, session.*, queue.*) and their outcomes.

Waits are driven by a call on the fake switch wherever the outcome depends on
what the switch does; trio's MockClock (``autojump_clock``) skips the waiting.
"""

from __future__ import annotations

import contextlib

import anyio
import anyio.abc
import pytest
import trio.testing
from opentelemetry.trace import StatusCode

from genesis_trio import ChannelHangup, ConnectionLost, Inbound, tracing
from genesis_trio.testing import Destination, FakeChannel, FakeFreeSWITCH
from genesis_trio.tracing import RingGroupResult, WaitResult

from ._util import parent_of, traced_inbound
from .conftest import Metrics, Recorded


async def wait_for_answer(client: Inbound, uuid: str, seconds: float) -> tracing.WaitSpan:
    """What Channel.wait does: a channel.wait span around a cancel-scoped wait."""
    with tracing.channel_wait(
        uuid,
        target="CHANNEL_ANSWER",
        timeout=seconds,
        wait_type="event",
        connection=client.connection,
    ) as span:
        async with client.connection.subscribe(uuid=uuid) as events:
            with anyio.move_on_after(seconds) as scope:
                async for event in events:
                    if event.name == "CHANNEL_ANSWER":
                        break
                    if event.name == "CHANNEL_HANGUP":
                        raise ChannelHangup(uuid, event.get("Hangup-Cause") or "")
            if scope.cancelled_caught:
                span.set_result(WaitResult.TIMEOUT)
    return span


def only_wait(recorded: Recorded) -> dict[str, object]:
    return dict(recorded.one("channel.wait").attributes or {})


@pytest.mark.trio
async def test_wait_matched_has_every_attribute_and_the_callers_parent(
    fake: FakeFreeSWITCH,
    recorded: Recorded,
    metrics: Metrics,
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=None))
    async with traced_inbound(fake, recorded, metrics) as c:
        await c.events("ALL")
        tracer = recorded.provider.get_tracer("test")
        with tracer.start_as_current_span("handler") as handler:
            async with anyio.create_task_group() as tg:
                channel = await start_call(tg, c, "user/1001", fake)

                async def answer_soon() -> None:
                    await anyio.sleep(2)
                    channel.mark_answered()

                tg.start_soon(answer_soon)
                span = await wait_for_answer(c, channel.uuid, seconds=30)
                tg.cancel_scope.cancel()
    assert span.result is WaitResult.MATCHED
    wait = recorded.one("channel.wait")
    assert wait.parent is not None
    assert wait.parent.span_id == handler.get_span_context().span_id
    assert only_wait(recorded) == {
        "channel.uuid": channel.uuid,
        "wait.target": "CHANNEL_ANSWER",
        "wait.timeout": 30,
        "wait.type": "event",
        "wait.result": "matched",
    }
    assert ({"operation": "wait", "result": "matched"}, 1.0) in metrics.points(
        "genesis.channel.operations"
    )


@pytest.mark.trio
async def test_wait_timeout(
    fake: FakeFreeSWITCH, recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=60))
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        async with anyio.create_task_group() as tg:
            channel = await start_call(tg, c, "user/1001", fake)
            span = await wait_for_answer(c, channel.uuid, seconds=5)
            tg.cancel_scope.cancel()
    assert span.result is WaitResult.TIMEOUT
    assert only_wait(recorded)["wait.result"] == "timeout"
    assert recorded.one("channel.wait").status.status_code is not StatusCode.ERROR


async def originate(client: Inbound, dial_path: str) -> None:
    """Start a call; its BACKGROUND_JOB only matters to the tests that wait for it."""
    with contextlib.suppress(ConnectionLost):
        await client.bgapi(f"originate {dial_path} &park", check=False)


async def start_call(
    task_group: anyio.abc.TaskGroup, client: Inbound, dial_path: str, fake: FakeFreeSWITCH
) -> FakeChannel:
    """Originate in the background; return the fake's channel once CHANNEL_CREATE arrived."""
    async with client.subscribe("CHANNEL_CREATE", request=False) as created:
        task_group.start_soon(originate, client, dial_path)
        event = await created.receive()
    return fake.channels[event.unique_id or ""]


@pytest.mark.trio
async def test_wait_hangup(
    fake: FakeFreeSWITCH, recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=None))
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        async with anyio.create_task_group() as tg:
            channel = await start_call(tg, c, "user/1001", fake)
            tg.start_soon(fake.hangup, channel.uuid, "USER_BUSY")
            with pytest.raises(ChannelHangup):
                await wait_for_answer(c, channel.uuid, seconds=30)
    wait = recorded.one("channel.wait")
    assert only_wait(recorded)["wait.result"] == "hangup"
    assert wait.status.status_code is StatusCode.ERROR
    assert [e.name for e in wait.events] == ["exception"]


@pytest.mark.trio
async def test_wait_connection_lost(
    fake: FakeFreeSWITCH, recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=None))
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        async with anyio.create_task_group() as tg:
            channel = await start_call(tg, c, "user/1001", fake)
            tg.start_soon(fake.drop_connections)
            with pytest.raises(ConnectionLost):
                await wait_for_answer(c, channel.uuid, seconds=30)
            tg.cancel_scope.cancel()
    assert only_wait(recorded)["wait.result"] == "connection_lost"


@pytest.mark.trio
async def test_a_cancelled_wait_ends_its_span_before_the_cancellation_propagates(
    fake: FakeFreeSWITCH, recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=None))
    seen_in_flight: list[object] = []
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        async with anyio.create_task_group() as tg:
            channel = await start_call(tg, c, "user/1001", fake)
            with anyio.move_on_after(3) as caller_deadline:  # the caller's own scope
                try:
                    await wait_for_answer(c, channel.uuid, seconds=30)
                finally:
                    # The Cancelled is still on its way up: the span is already exported.
                    seen_in_flight.extend(
                        s.attributes.get("wait.result")
                        for s in recorded.spans("channel.wait")
                        if s.attributes
                    )
            tg.cancel_scope.cancel()
    assert caller_deadline.cancelled_caught
    assert seen_in_flight == ["cancelled"]
    assert recorded.one("channel.wait").status.status_code is not StatusCode.ERROR


@pytest.mark.trio
async def test_wait_error() -> None:
    recorded_error = Recorded.in_memory()
    with (
        pytest.raises(ValueError),
        tracing.channel_wait(
            "u",
            target="x",
            timeout=None,
            wait_type="state",
            tracer_provider=recorded_error.provider,
        ),
    ):
        raise ValueError("bad")
    attributes = dict(recorded_error.one("channel.wait").attributes or {})
    assert attributes["wait.result"] == "error"
    assert "wait.timeout" not in attributes  # None is left out, not written as a string


# --- ring group ---------------------------------------------------------------------


async def ring(client: Inbound, dial_paths: list[str], seconds: float) -> tracing.RingGroupSpan:
    """A minimal parallel ring driven through the fake: first answer wins."""
    with tracing.ring_group_ring(
        mode="parallel",
        size=len(dial_paths),
        timeout=seconds,
        has_balancer=False,
        has_variables=False,
        connection=client.connection,
    ) as span:
        with anyio.move_on_after(seconds):
            async with anyio.create_task_group() as legs:

                async def leg(dial_path: str) -> None:
                    body = await client.bgapi(f"originate {dial_path} &park")
                    span.answered(body.split()[1], dial_path)
                    legs.cancel_scope.cancel()

                for dial_path in dial_paths:
                    legs.start_soon(leg, dial_path)
    return span


@pytest.mark.trio
async def test_ring_group_answered(
    fake: FakeFreeSWITCH,
    recorded: Recorded,
    metrics: Metrics,
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=None))
    fake.add_destination("user/1002", Destination(answer_after=4))
    async with traced_inbound(fake, recorded, metrics) as c:
        span = await ring(c, ["user/1001", "user/1002"], seconds=20)
    assert span.result is RingGroupResult.ANSWERED
    attributes = dict(recorded.one("ring_group.ring").attributes or {})
    answered = next(ch for ch in fake.channel_history if ch.dial_path == "user/1002")
    assert attributes == {
        "ring_group.mode": "parallel",
        "ring_group.size": 2,
        "ring_group.timeout": 20,
        "ring_group.has_balancer": False,
        "ring_group.has_variables": False,
        "ring_group.result": "answered",
        "ring_group.duration": pytest.approx(4, abs=0.5),
        "ring_group.answered_uuid": answered.uuid,
        "ring_group.answered_dial_path": "user/1002",
    }
    bgapis = [
        s
        for s in recorded.spans("send_command")
        if parent_of(s, recorded.spans()) == recorded.one("ring_group.ring")
        and s.attributes
        and s.attributes["command.name"] == "bgapi"
    ]
    assert len(bgapis) == 2
    assert ({"mode": "parallel", "result": "answered"}, 1.0) in metrics.points(
        "genesis.ring_group.results"
    )


@pytest.mark.trio
async def test_ring_group_no_answer(
    fake: FakeFreeSWITCH, recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=None))
    async with traced_inbound(fake, recorded) as c:
        span = await ring(c, ["user/1001"], seconds=5)
    assert span.result is RingGroupResult.NO_ANSWER
    attributes = dict(recorded.one("ring_group.ring").attributes or {})
    assert attributes["ring_group.result"] == "no_answer"
    assert "ring_group.answered_uuid" not in attributes
    assert "ring_group.error" not in attributes


@pytest.mark.trio
async def test_ring_group_cancelled_by_the_caller(
    fake: FakeFreeSWITCH, recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=None))
    async with traced_inbound(fake, recorded) as c:
        with anyio.move_on_after(2):
            await ring(c, ["user/1001"], seconds=30)
    attributes = dict(recorded.one("ring_group.ring").attributes or {})
    assert attributes["ring_group.result"] == "cancelled"
    assert "ring_group.error" not in attributes


@pytest.mark.trio
async def test_ring_group_error(fake: FakeFreeSWITCH, recorded: Recorded) -> None:
    async with traced_inbound(fake, recorded) as c:
        with pytest.raises(Exception) as raised:
            await ring(c, ["nowhere/404"], seconds=30)
    span = recorded.one("ring_group.ring")
    attributes = dict(span.attributes or {})
    assert attributes["ring_group.result"] == "error"
    assert "CommandError" in str(attributes["ring_group.error"])
    assert span.status.status_code is StatusCode.ERROR
    assert raised.value is not None


# --- the other channel operations -----------------------------------------------------


@pytest.mark.trio
async def test_channel_operation_attributes(
    fake: FakeFreeSWITCH, recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=None))
    async with traced_inbound(fake, recorded) as c:
        conn = c.connection
        await c.events("CHANNEL_CREATE")
        async with anyio.create_task_group() as tg:
            uuid = (await start_call(tg, c, "user/1001", fake)).uuid
            tg.cancel_scope.cancel()
        with tracing.channel_answer(uuid, state="CS_EXECUTE", connection=conn):
            await c.api("uptime")
        with tracing.channel_park(uuid, state="CS_EXECUTE", connection=conn):
            await c.api("uptime")
        with tracing.channel_bridge(uuid, "other-uuid", state="CS_EXECUTE", connection=conn):
            pass
        with tracing.channel_playback(uuid, "/tmp/hello.wav", block=True, connection=conn):
            pass
        with tracing.channel_say(
            uuid, module="en", kind="NUMBER", method="pronounced", connection=conn
        ):
            pass
        with tracing.channel_play_and_get_digits(uuid, "/tmp/menu.wav", tries=3, connection=conn):
            pass
        with tracing.channel_hangup(
            uuid, cause="NORMAL_CLEARING", state="CS_EXECUTE", connection=conn
        ) as hangup:
            await c.api(f"uuid_kill {uuid}")
            hangup.set("call.duration", 12.5)
        with tracing.channel_dtmf_received(uuid, "5", connection=conn):
            pass
        with pytest.raises(RuntimeError), tracing.channel_dtmf_received(uuid, "#", connection=conn):
            raise RuntimeError("handler failed")

    def attrs(name: str, index: int = 0) -> dict[str, object]:
        return dict(recorded.spans(name)[index].attributes or {})

    answer = attrs("channel.answer")
    assert answer.pop("channel.answer.duration") >= 0  # type: ignore[operator]
    assert answer == {
        "channel.uuid": uuid,
        "channel.state": "CS_EXECUTE",
        "channel.answer.success": True,
    }
    assert attrs("channel.park") == {"channel.uuid": uuid, "channel.state": "CS_EXECUTE"}
    assert attrs("channel.bridge") == {
        "channel.uuid": uuid,
        "channel.other_uuid": "other-uuid",
        "channel.state": "CS_EXECUTE",
        "channel.bridge.success": True,
    }
    assert attrs("channel.playback") == {
        "channel.uuid": uuid,
        "playback.path": "/tmp/hello.wav",
        "playback.block": True,
    }
    assert attrs("channel.say") == {
        "channel.uuid": uuid,
        "say.module": "en",
        "say.kind": "NUMBER",
        "say.method": "pronounced",
    }
    assert attrs("channel.play_and_get_digits") == {
        "channel.uuid": uuid,
        "play_and_get_digits.file": "/tmp/menu.wav",
        "play_and_get_digits.tries": 3,
    }
    assert attrs("channel.hangup") == {
        "channel.uuid": uuid,
        "channel.state": "CS_EXECUTE",
        "hangup.cause": "NORMAL_CLEARING",
        "call.duration": 12.5,
    }
    assert attrs("channel.dtmf.received", 0) == {
        "channel.uuid": uuid,
        "dtmf.digit": "5",
        "dtmf.handled": True,
    }
    assert attrs("channel.dtmf.received", 1)["dtmf.handled"] is False
    for name in ("channel.answer", "channel.park", "channel.hangup"):
        command = [
            s
            for s in recorded.spans("send_command")
            if parent_of(s, recorded.spans()) == recorded.one(name)
        ]
        assert [s.attributes["command.name"] for s in command if s.attributes] == ["api"], name


def test_failed_answer_and_bridge_record_success_false() -> None:
    recorded = Recorded.in_memory()
    with (
        pytest.raises(ChannelHangup),
        tracing.channel_answer("u", tracer_provider=recorded.provider),
    ):
        raise ChannelHangup("u", "NO_ANSWER")
    with (
        pytest.raises(ConnectionLost),
        tracing.channel_bridge("u", "v", tracer_provider=recorded.provider),
    ):
        raise ConnectionLost("gone")
    answer = dict(recorded.one("channel.answer").attributes or {})
    assert answer["channel.answer.success"] is False
    assert "channel.state" not in answer
    assert recorded.one("channel.bridge").attributes == {
        "channel.uuid": "u",
        "channel.other_uuid": "v",
        "channel.bridge.success": False,
    }


def test_session_spans_nest_and_queue_depth_is_a_span_attribute() -> None:
    recorded = Recorded.in_memory()
    with (
        tracing.session_sendmsg(
            "u",
            application="playback",
            application_uuid="app-1",
            block=True,
            tracer_provider=recorded.provider,
        ),
        tracing.session_await_complete("u", "app-1", tracer_provider=recorded.provider),
    ):
        pass
    sendmsg = recorded.one("session.sendmsg")
    complete = recorded.one("session.await_complete")
    assert dict(sendmsg.attributes or {}) == {
        "channel.uuid": "u",
        "application.name": "playback",
        "application.uuid": "app-1",
        "application.block": True,
    }
    assert dict(complete.attributes or {}) == {
        "channel.uuid": "u",
        "application.uuid": "app-1",
        "wait.result": "matched",
    }
    assert complete.parent is not None
    assert sendmsg.context is not None
    assert complete.parent.span_id == sendmsg.context.span_id

    with tracing.queue_wait_and_acquire("q1", "item-9", tracer_provider=recorded.provider) as q:
        q.joined(4)
    assert dict(recorded.one("queue.wait_and_acquire").attributes or {}) == {
        "queue.id": "q1",
        "queue.item_id": "item-9",
        "queue.depth": 4,
        "queue.result": "acquired",
    }


def test_outbound_handle_connection_names_the_peer() -> None:
    recorded = Recorded.in_memory()
    with tracing.outbound_handle_connection("192.0.2.2", 40123, tracer_provider=recorded.provider):
        pass
    assert recorded.one("outbound_handle_connection").attributes == {
        "net.peer.name": "192.0.2.2",
        "net.peer.port": 40123,
    }


def test_helpers_are_inert_without_an_sdk() -> None:
    from opentelemetry.trace import NoOpTracerProvider

    with tracing.channel_wait(
        "u", target="x", timeout=1, wait_type="event", tracer_provider=NoOpTracerProvider()
    ) as span:
        assert not span.recording
        span.set("anything", 1)
        span.add_event("ignored")
        assert span.trace_variables() == {}
    assert span.result is WaitResult.MATCHED


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_cancellation_is_recognised_on_both_backends(anyio_backend: str) -> None:
    recorded = Recorded.in_memory()
    with anyio.CancelScope() as scope:
        with tracing.channel_wait(
            "u", target="x", timeout=None, wait_type="event", tracer_provider=recorded.provider
        ) as span:
            scope.cancel()
            await anyio.sleep_forever()
    assert span.result is WaitResult.CANCELLED
    assert recorded.one("channel.wait").attributes == {
        "channel.uuid": "u",
        "wait.target": "x",
        "wait.type": "event",
        "wait.result": "cancelled",
    }
