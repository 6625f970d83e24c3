"""Ring groups with a load balancer: the order it picks and the counts it keeps.

The counts must always come back down: after the call, after a cancelled
ring, after a lost connection.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import ConnectionLost, Inbound
from genesis_trio.group import InMemoryLoadBalancer, RingGroup, RingMode
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.trio


class RecordingBalancer(InMemoryLoadBalancer):
    """The in-memory balancer, logging every count change with the (virtual) time."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[float, str, str, int]] = []

    async def increment(self, key: str) -> int:
        count = await super().increment(key)
        self.log.append((trio.current_time(), "+", key, count))
        return count

    async def decrement(self, key: str) -> int:
        count = await super().decrement(key)
        self.log.append((trio.current_time(), "-", key, count))
        return count

    async def counts(self, *keys: str) -> dict[str, int]:
        return {key: await self.count(key) for key in keys}


async def preload(balancer: InMemoryLoadBalancer, **calls: int) -> None:
    for key, count in calls.items():
        for _ in range(count):
            await balancer.increment(key.replace("_", "/"))


def originated(fake: FakeFreeSWITCH) -> list[str]:
    return [leg.dial_path for leg in fake.channel_history]


async def test_least_loaded_rings_first_and_the_answered_call_counts_until_hangup(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1", Destination(answer_after=1))
    fake.add_destination("user/2", Destination(answer_after=None))
    fake.add_destination("user/3", Destination(reject_cause="USER_BUSY"))
    balancer = RecordingBalancer()
    await preload(balancer, user_1=2, user_2=1)
    balancer.log.clear()
    async with Inbound(fake.host, fake.port) as client:
        start = trio.current_time()
        answered = await RingGroup.ring(
            client,
            ["user/1", "user/2", "user/3"],
            RingMode.BALANCING,
            timeout=30,
            balancer=balancer,
        )
        assert answered is not None
        assert answered.dial_path == "user/1"
        # Least loaded first: 3 (0 calls, busy), then 2 (1 call, never answers), then 1.
        assert originated(fake) == ["user/3", "user/2", "user/1"]
        # 3 failed at once, so 2 got half of the 30 s, and 1 the 15 s left.
        assert trio.current_time() - start == pytest.approx(16)
        assert [(t - start, op, key) for t, op, key, _ in balancer.log] == [
            (0, "+", "user/3"),
            (0, "-", "user/3"),
            (0, "+", "user/2"),
            (15, "-", "user/2"),
            (15, "+", "user/1"),
            # the answered call: counted by its holder before the ring lets go
            (16, "+", "user/1"),
            (16, "-", "user/1"),
        ]
        assert await balancer.counts("user/1", "user/2", "user/3") == {
            "user/1": 3,
            "user/2": 1,
            "user/3": 0,
        }
        await fake.hangup(answered.uuid)
        await trio.testing.wait_all_tasks_blocked()
        assert await balancer.counts("user/1", "user/2", "user/3") == {
            "user/1": 2,
            "user/2": 1,
            "user/3": 0,
        }


async def test_ties_follow_the_given_order(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=None))
    balancer = InMemoryLoadBalancer()
    async with Inbound(fake.host, fake.port) as client:
        answered = await RingGroup.ring(
            client, ["user/b", "user/a", "user/c"], "balancing", timeout=9, balancer=balancer
        )
        assert answered is None
        assert originated(fake) == ["user/b", "user/a", "user/c"]
        assert [await balancer.count(key) for key in ("user/a", "user/b", "user/c")] == [0, 0, 0]


async def test_counts_come_back_down_when_the_ring_is_cancelled(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=60))
    balancer = RecordingBalancer()
    async with Inbound(fake.host, fake.port) as client:
        with trio.move_on_after(5) as scope:
            await RingGroup.ring(
                client, ["user/1", "user/2"], RingMode.BALANCING, timeout=30, balancer=balancer
            )
        assert scope.cancelled_caught
        assert [(op, key) for _, op, key, _ in balancer.log] == [("+", "user/1"), ("-", "user/1")]
        assert await balancer.counts("user/1", "user/2") == {"user/1": 0, "user/2": 0}
        await trio.testing.wait_all_tasks_blocked()
        assert dict(fake.channels) == {}


async def test_parallel_ring_counts_every_ringing_leg(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1", Destination(answer_after=3))
    fake.add_destination("user/2", Destination(answer_after=None))
    balancer = RecordingBalancer()
    async with Inbound(fake.host, fake.port) as client:
        answered = await RingGroup.ring(
            client, ["user/1", "user/2"], RingMode.PARALLEL, timeout=30, balancer=balancer
        )
        assert answered is not None
        # Both legs counted while they rang; only the answered call still counts.
        assert sorted((t, op, key) for t, op, key, _ in balancer.log if t == 0) == [
            (0, "+", "user/1"),
            (0, "+", "user/2"),
        ]
        assert await balancer.counts("user/1", "user/2") == {"user/1": 1, "user/2": 0}
        await answered.hangup()
        await trio.testing.wait_all_tasks_blocked()
        assert await balancer.counts("user/1", "user/2") == {"user/1": 0, "user/2": 0}


async def test_answered_call_stops_counting_when_the_connection_is_lost(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1", Destination(answer_after=1))
    balancer = InMemoryLoadBalancer()
    async with Inbound(fake.host, fake.port) as client:
        answered = await RingGroup.ring(
            client, ["user/1"], RingMode.BALANCING, timeout=30, balancer=balancer
        )
        assert answered is not None
        assert await balancer.count("user/1") == 1
        await fake.drop_connections()
        await trio.testing.wait_all_tasks_blocked()
        assert await balancer.count("user/1") == 0


async def test_counts_come_back_down_when_the_connection_is_lost_during_the_ring(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/*", Destination(answer_after=60))
    balancer = RecordingBalancer()

    async def drop_after(seconds: float) -> None:
        await trio.sleep(seconds)  # a point in the scripted (virtual) timeline
        await fake.drop_connections()

    async with Inbound(fake.host, fake.port) as client, trio.open_nursery() as nursery:
        nursery.start_soon(drop_after, 2)
        with pytest.raises(ConnectionLost):
            await RingGroup.ring(
                client, ["user/1", "user/2"], RingMode.PARALLEL, timeout=30, balancer=balancer
            )
        assert await balancer.counts("user/1", "user/2") == {"user/1": 0, "user/2": 0}
        assert len(balancer.log) == 4


async def test_counts_come_back_down_when_the_client_closes(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1", Destination(answer_after=1))
    balancer = InMemoryLoadBalancer()
    async with Inbound(fake.host, fake.port) as client:
        answered = await RingGroup.ring(client, ["user/1"], balancer=balancer)
        assert answered is not None
        assert await balancer.count("user/1") == 1
    # The connection owned the task holding the count: leaving it let go.
    assert await balancer.count("user/1") == 0


async def test_a_failing_balancer_fails_the_ring_and_rings_nobody(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    class Unreachable(InMemoryLoadBalancer):
        async def least_loaded(self, keys: object) -> str:
            raise OSError("balancer unreachable")

    fake.add_destination("user/*", Destination(answer_after=1))
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(OSError, match="unreachable"):
            await RingGroup.ring(
                client, ["user/1", "user/2"], RingMode.BALANCING, balancer=Unreachable()
            )
        assert originated(fake) == []


async def test_cancelled_after_the_answer_hangs_the_winner_up_and_lets_go_of_its_count(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    class SlowToCount(InMemoryLoadBalancer):
        async def increment(self, key: str) -> int:
            if await self.count(key):  # the answered call's holder: a (virtual) second
                await trio.sleep(1)
            return await super().increment(key)

    fake.add_destination("user/1", Destination(answer_after=2))
    balancer = SlowToCount()
    async with Inbound(fake.host, fake.port) as client:
        # Cancelled at 2.5 s: after the answer at 2 s, while the count is handed over.
        with trio.move_on_after(2.5) as scope:
            await RingGroup.ring(client, ["user/1"], balancer=balancer)
        assert scope.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        leg = fake.channel_history[0]
        assert leg.answered
        assert leg.hangup_cause == "ORIGINATOR_CANCEL"
        assert dict(fake.channels) == {}
        assert await balancer.count("user/1") == 0


async def test_a_balancer_that_cannot_count_fails_the_parallel_ring_with_one_error(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    class CannotCount(InMemoryLoadBalancer):
        async def increment(self, key: str) -> int:
            raise OSError("balancer unreachable")

    fake.add_destination("user/*", Destination(answer_after=1))
    async with Inbound(fake.host, fake.port) as client:
        with pytest.raises(OSError, match="unreachable"):
            await RingGroup.ring(client, ["user/1", "user/2"], balancer=CannotCount())
        assert originated(fake) == []
