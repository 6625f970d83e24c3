"""``kill -9`` of a real switch: a playback, a ring, a queue wait tied to a call and a
subscription, all in flight on their own connections, fail at once with ConnectionLost.

One private switch serves the four at once (one start, one kill): each scenario reports
when it is truly in flight on the switch, the switch is killed, and every scenario must
end with ConnectionLost within a deadline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

from genesis_trio import (
    Channel,
    ConnectionLost,
    Event,
    InMemoryBackend,
    Queue,
    RingGroup,
    RingMode,
)
from real_switch import RealSwitch

from ._calls import next_matching

pytestmark = pytest.mark.trio

SETUP_DEADLINE = 40  # four calls set up on a loaded machine
FAILURE_DEADLINE = 15  # "at once", with room for a loaded machine: never a hang


class JoinSignal(InMemoryBackend):
    """The in-memory line, telling the test when a waiter has joined it."""

    def __init__(self) -> None:
        super().__init__()
        self.on_join: trio.Event | None = None

    async def join(self, queue_id: str, ticket: str, max_concurrent: int) -> int:
        depth = await super().join(queue_id, ticket, max_concurrent)
        if self.on_join is not None:
            self.on_join.set()
        return depth


Scenario = Callable[[RealSwitch, trio.Event], Awaitable[None]]


async def playback(switch: RealSwitch, in_flight: trio.Event) -> None:
    async with switch.inbound() as client:
        channel = await Channel.create(client, "loopback/9002/default")
        async with client.subscribe("CHANNEL_EXECUTE") as executed, trio.open_nursery() as nursery:

            async def playing() -> None:
                while (
                    await next_matching(executed, "CHANNEL_EXECUTE", channel.uuid)
                ).application != "playback":
                    pass  # the leg's park, from its originate
                in_flight.set()

            nursery.start_soon(playing)
            await channel.playback("silence_stream://600000")


async def ring(switch: RealSwitch, in_flight: trio.Event) -> None:
    async with switch.inbound() as client, client.subscribe("CHANNEL_PROGRESS") as progress:

        async def ringing() -> None:
            # 9004 rings for ten minutes: the leg is ringing on the switch now.
            await next_matching(progress, "CHANNEL_PROGRESS")
            in_flight.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ringing)
            await RingGroup.ring(
                client,
                ["loopback/9004/default", "loopback/9004/default"],
                RingMode.PARALLEL,
                timeout=600,
            )


async def queue_wait(switch: RealSwitch, in_flight: trio.Event) -> None:
    """A caller waits in line for a busy agent; the place in line belongs to the call
    (``channel=``), so losing the call's connection takes it out of line at once."""
    backend = JoinSignal()
    queue = Queue(backend)
    agent_busy = trio.Event()

    async def agent_on_a_call() -> None:
        async with queue.slot("support", max_concurrent=1):
            agent_busy.set()
            await trio.sleep_forever()

    async with trio.open_nursery() as agents:
        agents.start_soon(agent_on_a_call)
        await agent_busy.wait()
        backend.on_join = in_flight
        try:
            async with switch.inbound() as client:
                caller = await Channel.create(client, "loopback/9002/default")
                async with queue.slot("support", max_concurrent=1, channel=caller):
                    raise AssertionError("the agent never frees the slot")
        finally:
            agents.cancel_scope.cancel()
            # Nobody is left in line once the waiter has gone.
            assert await queue.depth("support") == 0


async def subscription(switch: RealSwitch, in_flight: trio.Event) -> None:
    async with switch.inbound() as client, client.subscribe("CHANNEL_ANSWER") as answers:
        in_flight.set()
        received: list[Event] = [event async for event in answers]
        raise AssertionError(f"the subscription ended without an error after {received}")


SCENARIOS: dict[str, Scenario] = {
    "playback": playback,
    "ring": ring,
    "queue_wait": queue_wait,
    "subscription": subscription,
}


async def test_kill_9_fails_everything_in_flight_with_connection_lost(
    private_freeswitch: RealSwitch,
) -> None:
    outcomes: dict[str, BaseException | None] = {}
    in_flight = {name: trio.Event() for name in SCENARIOS}
    finished = {name: trio.Event() for name in SCENARIOS}

    async def run(name: str, scenario: Scenario) -> None:
        try:
            await scenario(private_freeswitch, in_flight[name])
            outcomes[name] = None
        except Exception as exc:  # recorded, asserted below
            outcomes[name] = _single(exc)
        finally:
            finished[name].set()

    async with trio.open_nursery() as nursery:
        for name, scenario in SCENARIOS.items():
            nursery.start_soon(run, name, scenario)
        with trio.fail_after(SETUP_DEADLINE):
            for name in SCENARIOS:
                await _first_of(in_flight[name], finished[name])
        early = {name: outcomes[name] for name in SCENARIOS if finished[name].is_set()}
        assert not early, f"ended before the switch was killed: {early!r}"

        private_freeswitch.kill()
        with trio.fail_after(FAILURE_DEADLINE):
            for name in SCENARIOS:
                await finished[name].wait()

    failures = {
        name: repr(outcome)
        for name, outcome in outcomes.items()
        if not isinstance(outcome, ConnectionLost)
    }
    assert not failures, failures


def _single(exc: BaseException) -> BaseException:
    """The one exception inside nested groups of one (a scenario's own task groups)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _first_of(*events: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        for event in events:

            async def wait_then_stop(event: trio.Event = event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(wait_then_stop)
