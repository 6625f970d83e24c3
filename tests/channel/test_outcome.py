"""OutcomeScope: the one place that decides how a blocking operation ended."""

from __future__ import annotations

import anyio
import pytest
import trio
import trio.testing

from genesis_trio import ChannelHangup, ConnectionLost, GenesisError, OperationTimeout, Outcome
from genesis_trio._outcome import OutcomeScope, outcome_of

pytestmark = pytest.mark.trio


async def test_a_finished_body_is_matched() -> None:
    seen: list[Outcome] = []
    with OutcomeScope("op", timeout=5, on_outcome=seen.append) as scope:
        await trio.lowlevel.checkpoint()
    assert scope.outcome is Outcome.MATCHED
    assert seen == [Outcome.MATCHED]


async def test_own_timeout_raises_builtin_timeout_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Outcome] = []
    started = trio.current_time()
    with (
        pytest.raises(TimeoutError) as caught,
        OutcomeScope("playback", timeout=3, on_outcome=seen.append),
    ):
        await trio.sleep_forever()
    assert isinstance(caught.value, OperationTimeout)
    assert isinstance(caught.value, GenesisError)
    assert caught.value.timeout == 3
    assert trio.current_time() - started == pytest.approx(3)
    assert seen == [Outcome.TIMEOUT]


async def test_caller_cancellation_propagates_untouched(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Outcome] = []
    crossed: list[BaseException] = []
    with trio.move_on_after(1) as outer:
        try:
            with OutcomeScope("wait", timeout=10, on_outcome=seen.append):
                await trio.sleep_forever()
        except BaseException as exc:
            crossed.append(exc)
            raise
    assert outer.cancelled_caught
    assert seen == [Outcome.CANCELLED]
    assert len(crossed) == 1
    assert isinstance(crossed[0], trio.Cancelled)


async def test_cancellation_wins_when_both_deadlines_expire_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Outcome] = []
    with trio.move_on_after(2) as outer:
        with OutcomeScope("wait", timeout=2, on_outcome=seen.append):
            await trio.sleep_forever()
    # No TimeoutError escaped the caller's scope: it was the caller's cancellation.
    assert outer.cancelled_caught
    assert seen == [Outcome.CANCELLED]


async def test_cancelling_the_task_group_is_a_cancellation() -> None:
    seen: list[Outcome] = []

    async def waiter(task_status: trio.TaskStatus[None]) -> None:
        with OutcomeScope("wait", on_outcome=seen.append):
            task_status.started()
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        await nursery.start(waiter)
        nursery.cancel_scope.cancel()
    assert seen == [Outcome.CANCELLED]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (ChannelHangup("u", "USER_BUSY"), Outcome.HANGUP),
        (ConnectionLost("gone"), Outcome.CONNECTION_LOST),
        (ValueError("bad"), Outcome.ERROR),
    ],
)
async def test_failures_pass_through_with_their_outcome(error: Exception, outcome: Outcome) -> None:
    seen: list[Outcome] = []
    with pytest.raises(type(error)) as caught, OutcomeScope("op", on_outcome=seen.append):
        raise error
    assert caught.value is error
    assert seen == [outcome]


async def test_negative_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        OutcomeScope("op", timeout=-1)


async def test_outcome_of_groups() -> None:
    assert outcome_of(None) is Outcome.MATCHED
    hangup_group = ExceptionGroup("g", [ChannelHangup("u"), ConnectionLost("x")])
    assert outcome_of(hangup_group) is Outcome.HANGUP
    assert outcome_of(ExceptionGroup("g", [TimeoutError()])) is Outcome.TIMEOUT
    assert outcome_of(ExceptionGroup("g", [ValueError()])) is Outcome.ERROR
    caught: list[BaseException] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class() as cancelled:
            caught.append(cancelled)
            raise
    assert outcome_of(BaseExceptionGroup("g", caught)) is Outcome.CANCELLED
    assert outcome_of(BaseExceptionGroup("g", [*caught, ValueError()])) is Outcome.ERROR
