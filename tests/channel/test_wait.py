"""channel.wait: every outcome, over an Inbound connection to the fake switch."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genesis_trio import (
    Channel,
    ChannelHangup,
    ChannelNotFound,
    ChannelState,
    ConnectionLost,
    Inbound,
)
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.trio


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def client(fake: FakeFreeSWITCH, spans: InMemorySpanExporter) -> AsyncIterator[Inbound]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with Inbound(fake.host, fake.port, tracer_provider=provider) as inbound:
        yield inbound


def wait_results(spans: InMemorySpanExporter) -> list[object]:
    return [
        span.attributes.get("wait.result")
        for span in spans.get_finished_spans()
        if span.name == "channel.wait" and span.attributes is not None
    ]


async def call(fake: FakeFreeSWITCH, client: Inbound, **script: float | None) -> Channel:
    fake.add_destination("user/1000", Destination(answer_after=0, **script))  # type: ignore[arg-type]
    return await Channel.create(client, "user/1000")


async def test_matched_state_and_event(
    fake: FakeFreeSWITCH,
    client: Inbound,
    spans: InMemorySpanExporter,
    autojump_clock: trio.testing.MockClock,
) -> None:
    channel = await call(fake, client, hangup_after=4)
    started = trio.current_time()
    event = await channel.wait(ChannelState.HANGUP, timeout=10)
    assert event is not None
    assert event.name == "CHANNEL_HANGUP"
    assert trio.current_time() - started == pytest.approx(4)
    assert channel.hung_up
    assert channel.hangup_cause == "NORMAL_CLEARING"
    complete = await channel.wait("CHANNEL_HANGUP_COMPLETE", timeout=1)
    assert complete is not None
    assert channel.hangup_cause_q850 == 16
    # Already there: no waiting at all.
    assert await channel.wait(ChannelState.HANGUP, timeout=0) is None
    assert wait_results(spans) == ["matched", "matched", "matched"]


async def test_timeout_raises_builtin_timeout_error(
    fake: FakeFreeSWITCH,
    client: Inbound,
    spans: InMemorySpanExporter,
    autojump_clock: trio.testing.MockClock,
) -> None:
    channel = await call(fake, client)
    started = trio.current_time()
    with pytest.raises(TimeoutError):
        await channel.wait("DTMF", timeout=2.5)
    assert trio.current_time() - started == pytest.approx(2.5)
    assert not channel.hung_up
    assert wait_results(spans) == ["timeout"]


async def test_caller_cancellation_propagates(
    fake: FakeFreeSWITCH,
    client: Inbound,
    spans: InMemorySpanExporter,
    autojump_clock: trio.testing.MockClock,
) -> None:
    channel = await call(fake, client)
    with trio.move_on_after(1) as scope:
        await channel.wait("DTMF", timeout=5)
    assert scope.cancelled_caught
    assert wait_results(spans) == ["cancelled"]


async def test_hangup_fails_the_wait_at_once(
    fake: FakeFreeSWITCH,
    client: Inbound,
    spans: InMemorySpanExporter,
    autojump_clock: trio.testing.MockClock,
) -> None:
    channel = await call(fake, client, hangup_after=3)
    started = trio.current_time()
    with pytest.raises(ChannelHangup) as caught:
        await channel.wait("DTMF", timeout=60)
    assert trio.current_time() - started == pytest.approx(3)
    assert caught.value.uuid == channel.uuid
    assert caught.value.cause == "NORMAL_CLEARING"
    # A hung-up channel fails further waits before waiting at all.
    with pytest.raises(ChannelHangup):
        await channel.wait(ChannelState.PARK)
    assert wait_results(spans) == ["hangup", "hangup"]


async def test_connection_loss_fails_the_wait_at_once(
    fake: FakeFreeSWITCH, client: Inbound, spans: InMemorySpanExporter
) -> None:
    channel = await call(fake, client)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fake.drop_connections)
        with pytest.raises(ConnectionLost):
            await channel.wait("DTMF", timeout=60)
    assert wait_results(spans) == ["connection_lost"]


async def test_hangup_with_a_cause(
    fake: FakeFreeSWITCH, client: Inbound, autojump_clock: trio.testing.MockClock
) -> None:
    channel = await call(fake, client)
    event = await channel.hangup("USER_BUSY")
    assert event is not None
    assert event.hangup_cause == "USER_BUSY"
    assert channel.hung_up
    await channel.wait("CHANNEL_DESTROY", timeout=1)
    assert channel.hangup_cause_q850 == 17
    assert channel.state is ChannelState.DESTROY
    assert await channel.hangup() is not None  # already gone: returns what it saw


async def test_from_uuid_and_variables(
    fake: FakeFreeSWITCH, client: Inbound, autojump_clock: trio.testing.MockClock
) -> None:
    original = await call(fake, client)
    channel = await Channel.from_uuid(client, original.uuid)
    assert channel.answered
    assert channel.state is ChannelState.EXECUTE
    assert await channel.get_variable("no_such_variable") is None
    await channel.set_variable("colour", "deep blue")
    assert await channel.get_variable("colour") == "deep blue"
    assert fake.channels[channel.uuid].variables["colour"] == "deep blue"
    await channel.set_variable("colour", None)
    assert await original.get_variable("colour") is None
    with pytest.raises(ChannelNotFound):
        await Channel.from_uuid(client, "00000000-0000-0000-0000-000000000000")
