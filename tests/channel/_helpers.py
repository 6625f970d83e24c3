"""Helpers shared by the channel tests."""

from __future__ import annotations

from task_tree import all_tasks

__all__ = ["all_tasks"]
