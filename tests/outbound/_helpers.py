"""Helpers for the outbound tests: a served Outbound and the task tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from genesis_trio import Outbound, Session
from genesis_trio.testing import FakeChannel, FakeFreeSWITCH


@asynccontextmanager
async def serving(app: Outbound) -> AsyncIterator[tuple[str, int]]:
    """Run ``app`` until the block ends; yields the address it listens on."""
    async with trio.open_nursery() as nursery:
        address: tuple[str, int] = await nursery.start(app.serve)
        try:
            yield address
        finally:
            nursery.cancel_scope.cancel()


def all_tasks() -> set[trio.lowlevel.Task]:
    """Every task alive in this run, found by walking the task tree."""
    return tasks_under(trio.lowlevel.current_root_task())


def tasks_under(root: trio.lowlevel.Task | trio.Nursery | None) -> set[trio.lowlevel.Task]:
    """``root`` (a task, or a nursery's children) and every task below it."""
    found: set[trio.lowlevel.Task] = set()
    pending = list(root.child_tasks) if isinstance(root, trio.Nursery) else [root]
    while pending:
        task = pending.pop()
        if task is None:
            continue
        found.add(task)
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return found


@asynccontextmanager
async def session_call(
    fake: FakeFreeSWITCH, **options: object
) -> AsyncIterator[tuple[Session, FakeChannel]]:
    """A call routed to an Outbound server; the test body plays the handler."""
    handed_over, sessions = trio.open_memory_channel[Session](1)
    release = trio.Event()

    async def handler(session: Session) -> None:
        await handed_over.send(session)
        await release.wait()

    app = Outbound(handler, port=0, **options)  # type: ignore[arg-type]
    async with serving(app) as address:
        far = await fake.call_socket(address)
        session = await sessions.receive()
        # The socket application parks a moment after connect; only then does
        # the channel run what sendmsg queues.
        if not session.channel.parked:
            await session.channel.wait("CHANNEL_PARK", timeout=5)
        try:
            yield session, far
        finally:
            release.set()
