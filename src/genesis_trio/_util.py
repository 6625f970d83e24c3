"""Small helpers shared by the async layer."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import anyio

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


def describe_error(exc: BaseException) -> str:
    """A transport error as text that always says something (class, errno, message)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            name = errno.errorcode.get(current.errno, str(current.errno))
            detail = current.strerror or str(current)
            return f"{type(current).__name__} ({name}: {detail})"
        current = current.__cause__ or current.__context__
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LazyEvent:
    """A one-shot flag whose :class:`anyio.Event` is made only when someone waits.

    Connections and sessions carry notices most code never waits for (the auth
    request, the reader's end, linger, the goodbye); an Event each costs a few
    hundred bytes per connection, this two slots.
    """

    __slots__ = ("_event", "_is_set")

    def __init__(self) -> None:
        self._event: anyio.Event | None = None
        self._is_set = False

    def set(self) -> None:
        self._is_set = True
        event, self._event = self._event, None
        if event is not None:
            event.set()  # its waiters hold it: this flag need not keep it

    def is_set(self) -> bool:
        return self._is_set

    @property
    def event(self) -> anyio.Event:
        """The Event to wait on (already set once the flag is)."""
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
            if self._is_set:
                event.set()
        return event
