"""On trio the outbox uses trio's own primitives per command (``trio_path``) instead of
anyio's layers: a reply's notice and the check for a pending cancellation. Each must
behave as the anyio version it replaces, whatever the order of set, cancel and wait."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import anyio
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio import Inbound
from genesis_trio._stream._outbox import check_not_cancelled
from genesis_trio._stream._socket import trio_path
from genesis_trio.testing import FakeFreeSWITCH


class _Notice(Protocol):
    def set(self) -> None: ...

    async def wait(self) -> None: ...


def _run_notice(make: Callable[[], _Notice], ops: list[str], start_at: int) -> list[str]:
    """What a waiter and a driver see: ``ops`` are set / cancel / yield, the waiter
    starts before op ``start_at``; set and cancel with no yield between land in one batch."""
    log: list[str] = []

    async def main() -> None:
        notice = make()
        scope = trio.CancelScope()

        async def waiter() -> None:
            log.append("wait")
            with scope:
                await notice.wait()
                log.append("woke")
                return
            log.append("cancelled")

        async with trio.open_nursery() as nursery:
            for index, op in enumerate([*ops, "end"]):
                if index == start_at:
                    nursery.start_soon(waiter)
                    await trio.testing.wait_all_tasks_blocked()
                if op == "set":
                    notice.set()
                    log.append("set")
                elif op == "cancel":
                    scope.cancel()
                    log.append("cancel")
                elif op == "yield":
                    await trio.testing.wait_all_tasks_blocked()
            scope.cancel()  # a waiter the ops never woke ends here
        log.append("end")

    trio.run(main)
    return log


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(st.sampled_from(["set", "cancel", "yield"]), max_size=6),
    start_at=st.integers(0, 7),
)
def test_a_trio_notice_behaves_as_an_anyio_event(ops: list[str], start_at: int) -> None:
    assert _run_notice(trio_path().notice, ops, start_at) == _run_notice(anyio.Event, ops, start_at)


def test_a_notice_wakes_its_waiter_once_set() -> None:
    assert _run_notice(trio_path().notice, ["yield", "set", "yield"], 0) == [
        "wait",
        "set",
        "woke",
        "end",
    ]


def _run_check(
    check: Callable[[], object], passed_by: float | None, cancelled: bool, shielded_inside: bool
) -> str:
    """Whether ``check()`` raised a cancellation. The deadline (none when ``passed_by`` is
    None) passes by ``passed_by`` seconds after its scope was entered and before the check,
    with no checkpoint between: the event loop has not noticed it yet."""
    clock = trio.testing.MockClock()

    async def main() -> str:
        deadline = math.inf if passed_by is None else trio.current_time() + 1
        with trio.CancelScope(deadline=deadline) as outer:
            if cancelled:
                outer.cancel()
            with trio.CancelScope(shield=shielded_inside):
                clock.jump(1 + (passed_by or 0))
                await check()  # type: ignore[misc]
                return "passed"
        return "cancelled"

    return trio.run(main, clock=clock)


@settings(max_examples=100, deadline=None)
@given(
    passed_by=st.sampled_from([None, -1.0, -1e-6, 0.0, 1e-6, 1.0]),
    cancelled=st.booleans(),
    shielded_inside=st.booleans(),
)
def test_the_trio_check_for_cancellation_matches_the_anyio_one(
    passed_by: float | None, cancelled: bool, shielded_inside: bool
) -> None:
    assert _run_check(
        trio_path().check_not_cancelled, passed_by, cancelled, shielded_inside
    ) == _run_check(check_not_cancelled, passed_by, cancelled, shielded_inside)


def test_a_passed_deadline_counts_before_the_loop_notices_it() -> None:
    check = trio_path().check_not_cancelled
    assert _run_check(check, 0.0, cancelled=False, shielded_inside=False) == "cancelled"
    assert _run_check(check, -1e-6, cancelled=False, shielded_inside=False) == "passed"


@pytest.mark.trio
async def test_a_connection_on_trio_uses_the_trio_path(fake: FakeFreeSWITCH) -> None:
    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        assert client.connection._outbox._notice is trio_path().notice
        with anyio.move_on_after(0) as scope:
            await client.api("status")
        assert scope.cancelled_caught
        assert "api status" not in fake.commands_received
        assert (await client.api("echo one")).strip() == "one"
