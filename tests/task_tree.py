"""Walks trio's task tree, so tests can prove that no task outlives its owner."""

from __future__ import annotations

import trio


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
