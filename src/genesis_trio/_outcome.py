"""How a blocking operation ended: the one place that decides it.

Every wait (``channel.wait``, a blocking ``execute``, ``playback``,
``play_and_get_digits``, ``bridge``, ``Channel.create``, ...) runs inside an
:class:`OutcomeScope`. The scope owns the operation's cancel scope, so its own
``timeout=`` and the caller's enclosing ``move_on_after`` / ``fail_after`` /
task-group cancellation reach the operation the same way, and on the way out
it decides which of a small closed set of outcomes happened:

==================  ======================================  ===========================
outcome             what happened                           what the caller sees
==================  ======================================  ===========================
``matched``         the operation finished                  its result
``timeout``         the operation's own ``timeout=`` ran    :class:`OperationTimeout`
                    out                                     (a builtin ``TimeoutError``)
``cancelled``       the caller's scope was cancelled        the backend's ``Cancelled``,
                                                            untouched
``hangup``          the channel hung up first               :class:`ChannelHangup`
``connection_lost`` the ESL connection went away first      :class:`ConnectionLost`
``error``           anything else (``-ERR`` replies, ...)   that exception
==================  ======================================  ===========================
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from types import TracebackType

import anyio

from ._exceptions import ChannelHangup, ConnectionLost, GenesisError

__all__ = ["OperationTimeout", "Outcome", "OutcomeScope", "is_cancellation", "outcome_of"]


class Outcome(enum.Enum):
    """How a blocking operation ended (written to spans as ``wait.result``)."""

    MATCHED = "matched"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    HANGUP = "hangup"
    CONNECTION_LOST = "connection_lost"
    ERROR = "error"


class OperationTimeout(GenesisError, TimeoutError):
    """An operation's own ``timeout=`` ran out; ``except TimeoutError`` catches it."""

    def __init__(self, operation: str, timeout: float) -> None:
        super().__init__(f"{operation} did not finish within {timeout:g} s")
        self.operation = operation
        self.timeout = timeout


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        found: list[BaseException] = []
        for inner in exc.exceptions:
            found.extend(_leaves(inner))
        return found
    return [exc]


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is the backend's cancellation (every leaf of a group is)."""
    try:
        cancelled = anyio.get_cancelled_exc_class()
    except Exception:  # outside an event loop: nothing can be a cancellation
        return False
    return all(isinstance(leaf, cancelled) for leaf in _leaves(exc))


def outcome_of(exc: BaseException | None) -> Outcome:
    """The outcome of an operation that ended with ``exc`` (None: it finished).

    A group counts as a cancellation only when everything in it is one; a
    hangup wins over a lost connection, because a hung-up outbound channel
    also closes its socket and the hangup is the cause.
    """
    if exc is None:
        return Outcome.MATCHED
    if is_cancellation(exc):
        return Outcome.CANCELLED
    leaves = _leaves(exc)
    if any(isinstance(leaf, ChannelHangup) for leaf in leaves):
        return Outcome.HANGUP
    if any(isinstance(leaf, ConnectionLost) for leaf in leaves):
        return Outcome.CONNECTION_LOST
    if any(isinstance(leaf, TimeoutError) for leaf in leaves):
        return Outcome.TIMEOUT
    return Outcome.ERROR


class OutcomeScope:
    """Run one blocking operation inside a cancel scope and record how it ended.

    ::

        with OutcomeScope("playback", timeout=5) as scope:
            await ...                      # the wait itself
        scope.outcome                      # Outcome.MATCHED if we got here

    (a) a body that finishes is ``matched``; (b) the scope's own deadline
    turns into :class:`OperationTimeout`; (c) a cancellation from outside is
    never caught or replaced; (d) :class:`ChannelHangup` and (e)
    :class:`ConnectionLost` raised by the body pass through as they are.
    ``on_outcome`` is called with the outcome before anything propagates
    (tracing writes ``wait.result`` from it). Cleanup that must still reach
    FreeSWITCH after a cancellation belongs in the body, shielded.
    """

    __slots__ = ("_cancel_scope", "_on_outcome", "operation", "outcome", "timeout")

    def __init__(
        self,
        operation: str,
        *,
        timeout: float | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative")
        self.operation = operation
        self.timeout = timeout
        self.outcome: Outcome | None = None
        self._on_outcome = on_outcome
        # No timeout, no scope: one with no deadline that nobody cancels can catch
        # nothing, and entering and leaving it is a good part of a short operation.
        self._cancel_scope = None if timeout is None else anyio.CancelScope()

    def __enter__(self) -> OutcomeScope:
        scope = self._cancel_scope
        if scope is not None:
            assert self.timeout is not None
            scope.deadline = anyio.current_time() + self.timeout
            scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope = self._cancel_scope
        if scope is None:
            self._finish(outcome_of(exc))
            return
        try:
            swallowed = scope.__exit__(exc_type, exc, tb)
        except BaseException as raised:
            self._finish(outcome_of(raised))
            raise
        # (AnyIO on trio returns True from a clean exit too: only a caught
        # cancellation with an exception in flight means our deadline fired.)
        if exc is not None and swallowed and scope.cancelled_caught:
            # Only our own deadline can be caught here: a cancelled enclosing
            # scope makes the backend let Cancelled through (tested on both).
            self._finish(Outcome.TIMEOUT)
            assert self.timeout is not None
            raise OperationTimeout(self.operation, self.timeout) from None
        self._finish(outcome_of(exc))

    def _finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        if self._on_outcome is not None:
            self._on_outcome(outcome)
