"""With no OpenTelemetry SDK configured (the default), calls and connections leave no
telemetry objects behind: a process that runs for weeks must not grow per call."""

from __future__ import annotations

import gc

import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace import TracerProvider

from genesis_trio import Channel, Inbound
from genesis_trio.testing import Destination, FakeFreeSWITCH
from genesis_trio.tracing import CallTraces

pytestmark = pytest.mark.trio


def _live(type_name: str) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj).__name__ == type_name)


async def _one_call(client: Inbound) -> None:
    channel = await Channel.create(client, "user/1000")
    await channel.playback("ivr/welcome.wav")
    await channel.hangup()


async def test_calls_and_connections_create_no_meters_each(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=0))
    async with Inbound(fake.host, fake.port) as client:
        await _one_call(client)  # warm-up: whatever is created once is created here
        meters_before = _live("_ProxyMeter")
        for _ in range(50):
            await _one_call(client)
    for _ in range(20):
        async with Inbound(fake.host, fake.port) as client:
            await client.api("status")
    assert _live("_ProxyMeter") == meters_before


async def test_ended_calls_leave_no_trace_parent_behind(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    # FreeSWITCH's last event of a channel, CHANNEL_STATE into CS_DESTROY, comes after
    # CHANNEL_DESTROY; it used to bring every ended call back into the map for good.
    fake.add_destination("user/1000", Destination(answer_after=0))
    provider = TracerProvider()
    async with Inbound(fake.host, fake.port, tracer_provider=provider) as client:
        for _ in range(300):
            await _one_call(client)
        await trio.testing.wait_all_tasks_blocked()
        (calls,) = (obj for obj in gc.get_objects() if isinstance(obj, CallTraces))
        assert len(calls) == 0
        # The read-only memory of ended calls stays at its bound.
        assert len(calls._ended) <= 256


async def test_calls_and_jobs_leave_no_filter_bookkeeping_behind(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    # Every channel and bgapi job holds an exact filter while it runs; with no user
    # filter nothing reaches the switch, and the spelling of each used to stay.
    fake.add_destination("user/1000", Destination(answer_after=0))
    async with Inbound(fake.host, fake.port) as client:
        for _ in range(20):
            await _one_call(client)
        await trio.testing.wait_all_tasks_blocked()
        filters = client._filters
        assert (len(filters._library), len(filters._spelling)) == (0, 0)
        # With a user filter the library's filters go to the switch and come back off.
        await client.filter("Event-Name", "HEARTBEAT")
        for _ in range(20):
            await _one_call(client)
        await trio.testing.wait_all_tasks_blocked()
        assert client.switch_filters == [("Event-Name", "HEARTBEAT")]
        assert (len(filters._library), len(filters._spelling)) == (0, 1)
