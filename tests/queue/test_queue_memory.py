"""Queue on the in-memory backend: FIFO turns, the bound, timeouts, cancellation, spans.

The sleeps here are points in a scripted timeline on trio's MockClock (``autojump_clock``):
virtual seconds, skipped as soon as every task waits; nothing waits for real time to pass.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from genesis_trio import GenesisError
from genesis_trio.queue import InMemoryBackend, Queue, QueueBackend, QueueSlot, QueueTimeoutError

# Under the autojump clock a deadlock turns into a prompt TooSlowError, not a hang.
DEADLOCK_GUARD = 1000


class Occupancy:
    """Counts holders inside slot bodies and remembers the most seen at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def leave(self) -> None:
        self.now -= 1


def test_in_memory_backend_satisfies_the_protocol() -> None:
    assert isinstance(InMemoryBackend(), QueueBackend)


@pytest.mark.trio
async def test_turns_follow_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    queue = Queue()
    served: list[int] = []

    async def caller(number: int) -> None:
        async with queue.slot("support"):
            served.append(number)
            await trio.sleep(1)

    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            for number in range(6):
                nursery.start_soon(caller, number)
                await trio.testing.wait_all_tasks_blocked()

    assert served == list(range(6))


@pytest.mark.trio
async def test_at_most_max_concurrent_hold_a_slot(autojump_clock: trio.testing.MockClock) -> None:
    queue = Queue()
    occupancy = Occupancy()

    async def caller() -> None:
        async with queue.slot("support", max_concurrent=3):
            occupancy.enter()
            await trio.sleep(1)
            occupancy.leave()

    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(caller)

    assert occupancy.most == 3
    assert await queue.in_use("support") == 0
    assert await queue.depth("support") == 0


@pytest.mark.trio
async def test_different_queues_do_not_share_slots(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = Queue()
    inside = trio.Event()
    release = trio.Event()

    async def hold_sales() -> None:
        async with queue.slot("sales"):
            inside.set()
            await release.wait()

    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold_sales)
            await inside.wait()
            with trio.fail_after(1):
                async with queue.slot("support") as slot:
                    assert slot.queue_id == "support"
            release.set()


@pytest.mark.trio
async def test_timeout_raises_queue_timeout_error_and_leaves_the_line(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = Queue()
    holding = trio.Event()
    release = trio.Event()
    served: list[str] = []

    async def holder() -> None:
        async with queue.slot("support"):
            holding.set()
            await release.wait()

    async def patient() -> None:
        async with queue.slot("support"):
            served.append("patient")

    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder)
            await holding.wait()
            started = trio.current_time()
            with pytest.raises(QueueTimeoutError) as caught:
                async with queue.slot("support", timeout=5, item_id="call-1"):
                    pytest.fail("acquired a slot that was held")
            assert trio.current_time() - started == pytest.approx(5)
            assert await queue.depth("support") == 0
            nursery.start_soon(patient)
            await trio.testing.wait_all_tasks_blocked()
            release.set()

    assert served == ["patient"]
    error = caught.value
    assert isinstance(error, TimeoutError)
    assert isinstance(error, GenesisError)
    assert (error.queue_id, error.item_id, error.timeout) == ("support", "call-1", 5)
    assert "support" in str(error)


@pytest.mark.trio
async def test_timeout_only_bounds_the_wait_not_the_work(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = Queue()
    async with queue.slot("support", timeout=1):
        await trio.sleep(10)
    assert await queue.in_use("support") == 0


@pytest.mark.trio
async def test_zero_timeout_takes_a_free_slot_and_refuses_a_busy_one() -> None:
    queue = Queue()
    async with queue.slot("support", timeout=0):
        with pytest.raises(QueueTimeoutError):
            async with queue.slot("support", timeout=0):
                pass
    assert (await queue.depth("support"), await queue.in_use("support")) == (0, 0)


@pytest.mark.trio
async def test_cancelled_waiter_leaves_no_ghost_in_the_line(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = Queue()
    holding = trio.Event()
    release = trio.Event()
    served: list[str] = []

    async def holder() -> None:
        async with queue.slot("support"):
            holding.set()
            await release.wait()

    async def waiter(name: str, scope: trio.CancelScope) -> None:
        with scope:
            async with queue.slot("support"):
                served.append(name)

    first_scope = trio.CancelScope()
    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder)
            await holding.wait()
            nursery.start_soon(waiter, "first", first_scope)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(waiter, "second", trio.CancelScope())
            await trio.testing.wait_all_tasks_blocked()
            assert await queue.depth("support") == 2

            first_scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert await queue.depth("support") == 1
            release.set()

    assert served == ["second"]
    assert (await queue.depth("support"), await queue.in_use("support")) == (0, 0)


@pytest.mark.trio
async def test_waiter_cancelled_as_its_slot_is_granted_passes_the_slot_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = Queue()
    holding = trio.Event()
    release = trio.Event()
    served: list[str] = []
    doomed = trio.CancelScope()

    async def holder() -> None:
        async with queue.slot("support"):
            holding.set()
            await release.wait()

    async def waiter(name: str, scope: trio.CancelScope) -> None:
        with scope:
            async with queue.slot("support"):
                served.append(name)

    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder)
            await holding.wait()
            nursery.start_soon(waiter, "doomed", doomed)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(waiter, "next", trio.CancelScope())
            await trio.testing.wait_all_tasks_blocked()
            # Both land in one scheduling batch: when the holder runs first, the
            # slot is granted to a waiter that has already been cancelled.
            release.set()
            doomed.cancel()

    assert served == ["next"]
    assert await queue.in_use("support") == 0


@pytest.mark.trio
async def test_body_exception_frees_the_slot_and_propagates_unchanged() -> None:
    queue = Queue()
    with pytest.raises(KeyError, match="boom"):
        async with queue.slot("support"):
            raise KeyError("boom")
    assert await queue.in_use("support") == 0


@pytest.mark.trio
async def test_cancelling_a_holder_frees_its_slot(autojump_clock: trio.testing.MockClock) -> None:
    queue = Queue()
    with trio.move_on_after(1) as scope:
        async with queue.slot("support"):
            await trio.sleep_forever()
    assert scope.cancelled_caught
    with trio.fail_after(1):
        async with queue.slot("support"):
            pass


@pytest.mark.trio
async def test_a_queue_has_one_bound_while_in_use() -> None:
    queue = Queue()
    async with queue.slot("support", max_concurrent=2):
        with pytest.raises(ValueError, match="max_concurrent=2"):
            async with queue.slot("support", max_concurrent=3):
                pass
    # Idle again: a new bound is accepted.
    async with queue.slot("support", max_concurrent=3):
        assert await queue.in_use("support") == 1


@pytest.mark.parametrize(("max_concurrent", "timeout"), [(0, None), (1, -1.0), (1, math.nan)])
def test_invalid_arguments_are_refused_at_once(max_concurrent: int, timeout: float | None) -> None:
    with pytest.raises(ValueError):
        Queue().slot("support", max_concurrent=max_concurrent, timeout=timeout)


def test_semaphore_refuses_a_bound_below_one() -> None:
    with pytest.raises(ValueError):
        Queue().semaphore("support", 0)


@pytest.mark.trio
async def test_slot_reports_what_it_is(autojump_clock: trio.testing.MockClock) -> None:
    queue = Queue()
    release = trio.Event()

    async def holder(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with queue.slot("support"):
            task_status.started()
            await release.wait()

    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            await nursery.start(holder)
            nursery.start_soon(_release_after, release, 3)
            async with queue.slot("support", item_id="call-42") as slot:
                assert isinstance(slot, QueueSlot)
                assert (slot.queue_id, slot.item_id, slot.depth) == ("support", "call-42", 1)
                assert slot.waited == pytest.approx(3)


async def _release_after(event: trio.Event, delay: float) -> None:
    await trio.sleep(delay)
    event.set()


@pytest.mark.trio
async def test_semaphore_is_shared_by_many_tasks(autojump_clock: trio.testing.MockClock) -> None:
    queue = Queue()
    sem = queue.semaphore("support", 2)
    occupancy = Occupancy()
    slots: list[QueueSlot] = []

    async def caller() -> None:
        async with sem as slot:
            slots.append(slot)
            occupancy.enter()
            await trio.sleep(1)
            occupancy.leave()

    with trio.fail_after(DEADLOCK_GUARD):
        async with trio.open_nursery() as nursery:
            for _ in range(7):
                nursery.start_soon(caller)

    assert occupancy.most == 2
    assert len(slots) == 7
    assert {slot.queue_id for slot in slots} == {"support"}
    assert (sem.queue_id, sem.max_concurrent) == ("support", 2)
    assert await queue.in_use("support") == 0


@pytest.mark.trio
async def test_semaphore_nests_in_one_task_and_takes_item_ids() -> None:
    queue = Queue()
    sem = queue.semaphore("support", 2)
    async with sem:
        async with sem(item_id="call-7") as inner:
            assert inner.item_id == "call-7"
            assert await queue.in_use("support") == 2
        assert await queue.in_use("support") == 1
    assert await queue.in_use("support") == 0


@pytest.mark.trio
async def test_semaphore_timeout_applies_to_each_use(
    autojump_clock: trio.testing.MockClock,
) -> None:
    queue = Queue()
    sem = queue.semaphore("support", 1, timeout=2)
    async with sem:
        with pytest.raises(QueueTimeoutError):
            async with sem:
                pass
    async with sem:
        pass


def _spans(exporter: InMemorySpanExporter) -> list[dict[str, object]]:
    return [
        {**dict(span.attributes or {}), "status": span.status.status_code}
        for span in exporter.get_finished_spans()
        if span.name == "queue.wait_and_acquire"
    ]


@pytest.mark.trio
async def test_wait_and_acquire_span_records_id_depth_and_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    queue = Queue(tracer_provider=provider)
    cancelled = trio.CancelScope()

    async def cancelled_waiter() -> None:
        with cancelled:
            async with queue.slot("support", item_id="cancelled"):
                pass

    async with queue.slot("support", item_id="first"):
        with pytest.raises(QueueTimeoutError):
            async with queue.slot("support", timeout=1, item_id="late"):
                pass
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancelled_waiter)
            await trio.testing.wait_all_tasks_blocked()
            cancelled.cancel()

    first, late, cancel = _spans(exporter)
    assert first == {
        "queue.id": "support",
        "queue.item_id": "first",
        "queue.depth": 1,
        "queue.max_concurrent": 1,
        "queue.result": "acquired",
        "status": StatusCode.UNSET,
    }
    assert late["queue.item_id"] == "late"
    assert late["queue.result"] == "timeout"
    assert late["queue.timeout"] == 1
    assert late["status"] == StatusCode.ERROR
    assert cancel["queue.result"] == "cancelled"
    assert cancel["status"] == StatusCode.UNSET


@pytest.mark.trio
async def test_span_records_backend_errors() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    queue = Queue(tracer_provider=provider)
    async with queue.slot("support", max_concurrent=1):
        with pytest.raises(ValueError):
            async with queue.slot("support", max_concurrent=2):
                pass
    _, errored = _spans(exporter)
    assert errored["queue.result"] == "error"
    assert errored["status"] == StatusCode.ERROR


@st.composite
def _scenarios(draw: st.DrawFn) -> tuple[int, list[tuple[int, int, int | None]]]:
    max_concurrent = draw(st.integers(1, 3))
    callers = draw(
        st.lists(
            st.tuples(
                st.integers(0, 5),  # arrives after this many seconds
                st.integers(1, 5),  # works this long once served
                st.none() | st.integers(0, 12),  # gives up after this long, if at all
            ),
            min_size=1,
            max_size=12,
        )
    )
    return max_concurrent, callers


@settings(deadline=None, max_examples=60)
@given(_scenarios())
def test_random_arrivals_and_cancellations_keep_fifo_and_the_bound(
    scenario: tuple[int, list[tuple[int, int, int | None]]],
) -> None:
    max_concurrent, callers = scenario
    queue = Queue()
    occupancy = Occupancy()
    arrived: list[int] = []
    served_at: dict[int, float] = {}

    async def caller(number: int, arrival: int, work: int, give_up: int | None) -> None:
        await trio.sleep(arrival)
        arrived.append(number)
        with trio.move_on_after(math.inf if give_up is None else give_up):
            async with queue.slot("q", max_concurrent=max_concurrent):
                served_at[number] = trio.current_time()
                occupancy.enter()
                try:
                    await trio.sleep(work)
                finally:
                    occupancy.leave()

    async def main() -> None:
        with trio.fail_after(DEADLOCK_GUARD):
            async with trio.open_nursery() as nursery:
                for number, (arrival, work, give_up) in enumerate(callers):
                    nursery.start_soon(caller, number, arrival, work, give_up)
        assert await queue.depth("q") == 0
        assert await queue.in_use("q") == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    assert occupancy.most <= max_concurrent
    for number, (_, _, give_up) in enumerate(callers):
        if give_up is None:
            assert number in served_at, "a patient caller was never served"
    # Nobody is served before someone who arrived earlier and was still waiting.
    served = [number for number in arrived if number in served_at]
    times = [served_at[number] for number in served]
    assert times == sorted(times)
