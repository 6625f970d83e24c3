"""Exceptions of the queue package.

They live here rather than in ``genesis_trio._exceptions`` only because this
package was built alongside it; both subclass the one root, ``GenesisError``.
"""

from __future__ import annotations

from .._exceptions import GenesisError

__all__ = ["QueueLeaseLost", "QueueTimeoutError"]


class QueueTimeoutError(GenesisError, TimeoutError):
    """No slot became free in time; the waiter has already left the line."""

    def __init__(self, queue_id: str, item_id: str, timeout: float) -> None:
        super().__init__(f"no free slot in queue {queue_id!r} within {timeout:g}s (item {item_id})")
        self.queue_id = queue_id
        self.item_id = item_id
        self.timeout = timeout


class QueueLeaseLost(GenesisError):
    """A held slot's lease expired before its heartbeat could renew it.

    Another process may already hold the slot, so the body of the ``async with``
    was cancelled rather than allowed to run past the concurrency bound.
    """

    def __init__(self, queue_id: str, ticket: str) -> None:
        super().__init__(f"lost the lease on a slot of queue {queue_id!r} (ticket {ticket})")
        self.queue_id = queue_id
        self.ticket = ticket
