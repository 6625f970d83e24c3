"""Helpers for the outbound tests: a served Outbound and the task tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from genesis_trio._outbound import Outbound


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
    found: set[trio.lowlevel.Task] = set()
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is None:
            continue
        found.add(task)
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return found
