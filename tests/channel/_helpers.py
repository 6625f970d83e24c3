"""Helpers shared by the channel tests."""

from __future__ import annotations

import trio


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
