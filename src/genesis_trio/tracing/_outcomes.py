"""How an operation ended: the closed sets of outcomes the spans record.

``wait.result`` and ``ring_group.result`` are decided here, from the
exception (or its absence) that left the operation's cancel scope.
"""

from __future__ import annotations

import enum
from typing import Final

from .._outcome import _leaves, is_cancellation, outcome_of

__all__ = [
    "RingGroupResult",
    "WaitResult",
    "classify_ring_group",
    "classify_wait",
    "error_text",
]

_ERROR_TEXT_LIMIT: Final = 200


class WaitResult(enum.StrEnum):
    """``wait.result``: how a wait (or another cancel-scoped operation) ended."""

    MATCHED = "matched"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    HANGUP = "hangup"
    CONNECTION_LOST = "connection_lost"
    ERROR = "error"


class RingGroupResult(enum.StrEnum):
    """``ring_group.result``."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    CANCELLED = "cancelled"
    ERROR = "error"


def classify_wait(exc: BaseException | None) -> WaitResult:
    """Map how a cancel-scoped operation ended to a :class:`WaitResult`.

    A cancellation from the caller's enclosing scope is ``cancelled``; the
    operation's own deadline is ``timeout`` (raised as TimeoutError, or set
    explicitly with :meth:`WaitSpan.set_result` after ``move_on_after``).
    """
    return WaitResult(outcome_of(exc).value)


def classify_ring_group(exc: BaseException | None, *, answered: bool) -> RingGroupResult:
    """Map how a ring-group fan-out ended to a :class:`RingGroupResult`.

    The group's own deadline (TimeoutError) is ``no_answer``, like a clean
    end without an answered leg.
    """
    if exc is None:
        return RingGroupResult.ANSWERED if answered else RingGroupResult.NO_ANSWER
    if is_cancellation(exc):
        return RingGroupResult.CANCELLED
    if all(isinstance(leaf, TimeoutError) for leaf in _leaves(exc)):
        return RingGroupResult.NO_ANSWER
    return RingGroupResult.ERROR


def error_text(exc: BaseException) -> str:
    """``Type: message`` of the exception, or of each leaf of an exception group."""
    text = "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in _leaves(exc))
    return text[:_ERROR_TEXT_LIMIT]
