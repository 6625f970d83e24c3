"""Ring groups in all three modes, and the Queue, with real legs.

``loopback/9004`` rings and never answers, ``loopback/9005`` is busy, ``loopback/9002``
answers at once. What each leg went through is read from the switch's events.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from genesis_trio import (
    Channel,
    ChannelHangup,
    ChannelState,
    Event,
    InMemoryBackend,
    InMemoryLoadBalancer,
    Queue,
    QueueTimeoutError,
    RingGroup,
    RingMode,
)
from real_switch import CallWatch, RealSwitch, channel_exists, placed_call, watch_calls

pytestmark = pytest.mark.trio

DEADLINE = 30
RINGS = "loopback/9004/default"
BUSY = "loopback/9005/default"
ANSWERS = "loopback/9002/default"


class WatchedBalancer(InMemoryLoadBalancer):
    """In-memory counts that say when they change: the test awaits a count, never polls it."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = trio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def increment(self, key: str) -> int:
        count = await super().increment(key)
        self._notify()
        return count

    async def decrement(self, key: str) -> int:
        count = await super().decrement(key)
        self._notify()
        return count

    async def wait_count(self, key: str, count: int) -> None:
        while True:
            changed = self._changed
            if await self.count(key) == count:
                return
            await changed.wait()


class WatchedLine(InMemoryBackend):
    """The in-memory queue backend, saying when a caller has joined the line."""

    def __init__(self) -> None:
        super().__init__()
        self._joined = trio.Event()

    async def join(self, queue_id: str, ticket: str, max_concurrent: int) -> int:
        depth = await super().join(queue_id, ticket, max_concurrent)
        self._joined.set()
        self._joined = trio.Event()
        return depth

    async def wait_depth(self, queue_id: str, depth: int) -> None:
        """Until at least ``depth`` callers wait in line (a join is what makes it grow)."""
        while True:
            joined = self._joined
            if await self.depth(queue_id) >= depth:
                return
            await joined.wait()


async def _hangup_cause(watch: CallWatch, uuid_: str) -> str | None:
    return (await watch.wait_event("CHANNEL_HANGUP", uuid_)).hangup_cause


async def _lost_with(watch: CallWatch, uuid_: str, cause: str) -> bool:
    """Whether a losing leg was hung up with ``cause``.

    A leg whose CHANNEL_CREATE had not reached the ring's connection when the race was
    decided (a loaded switch) is hung up by Channel.create's cancellation path, with
    ORIGINATOR_CANCEL: the ring does not know its uuid yet.
    """
    return await _hangup_cause(watch, uuid_) in (cause, "ORIGINATOR_CANCEL")


async def test_parallel_the_answering_leg_wins_and_the_others_lose_the_race(
    freeswitch: RealSwitch,
) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            winner = await RingGroup.ring(
                client, [RINGS, RINGS, ANSWERS], RingMode.PARALLEL, timeout=DEADLINE,
                variables=watch.variables,
            )  # fmt: skip
            assert winner is not None
            try:
                assert winner.answered
                assert winner.dial_path == ANSWERS
                assert await channel_exists(client, winner.uuid)
                # Our own connection may hear of the legs before the watch does.
                await watch.wait_channels(6)
                assert watch.named("loopback/9002-a") == [winner.uuid]
                losers = watch.named("loopback/9004-a")
                assert len(losers) == 2
                for leg in losers:
                    assert await _lost_with(watch, leg, "LOSE_RACE")
                    assert not await channel_exists(client, leg)
            finally:
                await winner.hangup()
            await watch.assert_all_gone(6)


async def test_sequential_rings_one_leg_at_a_time_in_order(freeswitch: RealSwitch) -> None:
    """Busy drops out at once, the ringing leg gets its share then NO_ANSWER, the third wins."""
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            winner = await RingGroup.ring(
                client, [BUSY, RINGS, ANSWERS], RingMode.SEQUENTIAL, timeout=5,
                variables=watch.variables,
            )  # fmt: skip
            assert winner is not None
            try:
                assert winner.dial_path == ANSWERS
                await watch.wait_channels(6)
                a_legs = [
                    watch.named(f"loopback/{extension}-a") for extension in ("9005", "9004", "9002")
                ]
                assert [len(legs) for legs in a_legs] == [1, 1, 1]
                busy, ringing, answered = (legs[0] for legs in a_legs)
                assert answered == winner.uuid
                assert await _hangup_cause(watch, busy) == "USER_BUSY"
                assert await _lost_with(watch, ringing, "NO_ANSWER")
                # One at a time: each leg was gone before the next one was created.
                order = [e.unique_id for e in watch.events() if e.name == "CHANNEL_CREATE"]
                assert order.index(busy) < order.index(ringing) < order.index(answered)
                hangups = {e.unique_id: _sequence(e) for e in watch.find(_named("CHANNEL_HANGUP"))}
                creates = {e.unique_id: _sequence(e) for e in watch.find(_named("CHANNEL_CREATE"))}
                assert hangups[busy] < creates[ringing]
                assert hangups[ringing] < creates[answered]
            finally:
                await winner.hangup()
            await watch.assert_all_gone(6)


def _sequence(event: Event) -> int:
    """Event-Sequence: the switch numbers its events as it creates them."""
    value = event.sequence
    assert value is not None
    return value


def _named(name: str) -> Callable[[Event], bool]:
    return lambda event: event.name == name


async def test_balancing_rings_the_least_loaded_first_and_counts_the_call(
    freeswitch: RealSwitch,
) -> None:
    balancer = WatchedBalancer()
    await balancer.increment(RINGS)  # someone else's call keeps 9004 busier
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            winner = await RingGroup.ring(
                client, [RINGS, ANSWERS], RingMode.BALANCING, timeout=DEADLINE,
                variables=watch.variables, balancer=balancer,
            )  # fmt: skip
            assert winner is not None
            try:
                assert winner.dial_path == ANSWERS
                # The busier destination was never dialled.
                assert not watch.named("loopback/9004-a")
                assert await balancer.count(ANSWERS) == 1
            finally:
                await winner.hangup()
            await watch.assert_all_gone(2)
            # The answered call is counted until it hangs up.
            with trio.fail_after(DEADLINE):
                await balancer.wait_count(ANSWERS, 0)
            assert await balancer.count(RINGS) == 1


@pytest.mark.parametrize("mode", [RingMode.PARALLEL, RingMode.SEQUENTIAL])
async def test_nobody_answers_returns_none_and_leaves_no_leg(
    freeswitch: RealSwitch, mode: RingMode
) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            winner = await RingGroup.ring(
                client, [RINGS, RINGS], mode, timeout=2, variables=watch.variables
            )
            assert winner is None
            await watch.assert_all_gone(4)
            for leg in watch.named("loopback/9004-a"):
                assert await _lost_with(watch, leg, "NO_ANSWER")


async def test_queue_gives_one_agent_to_one_caller_at_a_time(freeswitch: RealSwitch) -> None:
    """Two callers, one agent slot: the second caller is bridged only after the first call
    ended, and a third that will not wait long gives up with QueueTimeoutError."""
    line = WatchedLine()
    queue = Queue(line)
    queue_id = "agents"
    bridged: list[tuple[str, str]] = []
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        holding = trio.Event()
        release = trio.Event()

        async def caller(first: bool) -> None:
            async with placed_call(client, "9002", watch) as channel:
                if not first:
                    await holding.wait()
                async with queue.slot(queue_id, max_concurrent=1, item_id=channel.uuid):
                    agent = await RingGroup.ring(
                        client, [ANSWERS], timeout=DEADLINE, variables=watch.variables
                    )
                    assert agent is not None
                    try:
                        await channel.bridge(agent)
                        bridged.append((channel.uuid, agent.uuid))
                        if first:
                            holding.set()
                            await release.wait()
                    finally:
                        await agent.hangup()
                    await channel.wait(ChannelState.HANGUP)

        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(caller, True)
                nursery.start_soon(caller, False)
                await holding.wait()
                # The second caller is in line; a third will not wait.
                await line.wait_depth(queue_id, 1)
                with pytest.raises(QueueTimeoutError):
                    async with queue.slot(queue_id, max_concurrent=1, timeout=0.2):
                        pass
                assert len(bridged) == 1
                release.set()
            assert len(bridged) == 2
            assert await queue.in_use(queue_id) == 0
            await watch.assert_all_gone(8)
            # The switch saw the second bridge only after the first call hung up.
            (first_caller, first_agent), (second_caller, _) = bridged
            first_end = min(
                [
                    _sequence(await watch.wait_event("CHANNEL_HANGUP", first_caller)),
                    _sequence(await watch.wait_event("CHANNEL_HANGUP", first_agent)),
                ]
            )
            second_bridge = _sequence(await watch.wait_event("CHANNEL_BRIDGE", second_caller))
            assert first_end < second_bridge


async def test_a_ring_group_answered_leg_can_be_bridged_to_a_caller(
    freeswitch: RealSwitch,
) -> None:
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with placed_call(client, "9002", watch) as caller:
                agent = await RingGroup.ring(
                    client, [RINGS, ANSWERS], caller=caller, timeout=DEADLINE,
                    variables=watch.variables,
                )  # fmt: skip
                assert isinstance(agent, Channel)
                try:
                    await caller.bridge(agent)
                    assert await caller.get_variable("bridge_uuid") == agent.uuid
                finally:
                    await agent.hangup()
            await watch.assert_all_gone(6)


async def test_a_caller_hanging_up_in_line_leaves_the_queue(freeswitch: RealSwitch) -> None:
    """``slot(channel=...)``: a waiting caller who hangs up leaves the line at once with
    ChannelHangup; a holder who hangs up frees the slot (its block is cancelled)."""
    line = WatchedLine()
    queue = Queue(line)
    queue_id = "hang-ups"
    async with watch_calls(freeswitch) as watch, freeswitch.inbound() as client:
        with trio.fail_after(DEADLINE):
            async with (
                placed_call(client, "9002", watch) as holder,
                placed_call(client, "9002", watch) as waiter,
            ):
                holding = trio.Event()
                waiter_left = trio.Event()
                outcomes: dict[str, ChannelHangup] = {}

                async def hold() -> None:
                    try:
                        async with queue.slot(queue_id, channel=holder):
                            holding.set()
                            await trio.sleep_forever()
                    except ChannelHangup as exc:
                        outcomes["holder"] = exc

                async def wait_in_line() -> None:
                    try:
                        async with queue.slot(queue_id, channel=waiter):
                            raise AssertionError("a hung-up caller got the slot")
                    except ChannelHangup as exc:
                        outcomes["waiter"] = exc
                        waiter_left.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(hold)
                    await holding.wait()
                    nursery.start_soon(wait_in_line)
                    await line.wait_depth(queue_id, 1)
                    # The caller in line hangs up: on the switch, not through our client.
                    await watch.client.api(f"uuid_kill {waiter.uuid} NORMAL_CLEARING")
                    await waiter_left.wait()
                    assert await queue.depth(queue_id) == 0
                    assert await queue.in_use(queue_id) == 1
                    await watch.client.api(f"uuid_kill {holder.uuid} NORMAL_CLEARING")
                assert await queue.in_use(queue_id) == 0
                assert outcomes["waiter"].uuid == waiter.uuid
                assert outcomes["holder"].uuid == holder.uuid
            await watch.assert_all_gone(4)
