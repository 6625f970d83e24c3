"""Small helpers shared by the async layer."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

logger = logging.getLogger("genesis_trio")

# The uuid of the call the current task works for (an outbound session's handler and the
# tasks it starts), so that log lines can name the call without every call site passing it.
current_call_uuid: ContextVar[str | None] = ContextVar("genesis_trio_call_uuid", default=None)


@contextmanager
def collapse_single_exception_group() -> Iterator[None]:
    """Let a group holding exactly one exception surface as that exception.

    Task groups wrap whatever crossed them in exception groups; our public
    context managers own their task groups as an implementation detail, so the
    user should see the single exception they would have seen without us.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if leaf is group:
            raise
        raise leaf from leaf.__cause__


def redact_command(command: str) -> str:
    """The first line of a command, safe for logs and spans (no credentials)."""
    first = command.split("\n", 1)[0]
    lowered = first.lower()
    if lowered.startswith("auth ") or lowered.startswith("userauth "):
        return first.split(" ", 1)[0] + " ******"
    return first


def publish(namespace: dict[str, object]) -> None:
    """Give the public classes and functions of a package its public module path.

    They are defined in private modules (``genesis_trio._exceptions``); a
    traceback, a ``repr`` or a docs page should say ``genesis_trio.ChannelHangup``.
    A name keeps the path of the outermost package that re-exports it, so a
    package imported later (``genesis_trio`` after ``genesis_trio.group``)
    overrides only names defined below itself.
    """
    package = namespace["__name__"]
    assert isinstance(package, str)
    exported = namespace.get("__all__", ())
    assert isinstance(exported, list | tuple)
    for name in exported:
        value = namespace.get(name)
        if not isinstance(value, type) and not inspect.isfunction(value):
            continue
        if getattr(value, "__module__", "").startswith(package + "."):
            value.__module__ = package
