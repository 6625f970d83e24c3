"""The connection's plug-in point for observers (tracing and metrics plug in here).

The adapter never imports an observer: its owner (Inbound, Outbound) builds
one and passes it to :class:`~genesis_trio.ESLConnection`. An unobserved
connection pays one ``is None`` check per command and nothing per event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from .._dispatch import EventHandler
from ..protocol import Event
from ._outbox import Reply

__all__ = ["ConnectionDepths", "ConnectionObserver", "SendCommand"]

#: What :meth:`ConnectionObserver.observe_command` wraps: ``send(data, label) -> reply``.
SendCommand = Callable[[bytes, str], Awaitable[Reply]]


class ConnectionDepths(Protocol):
    """What an observer may read of a connection at any time (queue depth gauges)."""

    @property
    def commands_waiting(self) -> int:
        """Commands written (or queued to be) whose reply has not come yet."""
        ...

    @property
    def events_buffered(self) -> int:
        """Events routed to subscriptions and handlers and not taken by them yet."""
        ...


class ConnectionObserver(Protocol):
    """What a connection tells whoever observes it.

    The synchronous methods run in the connection's reader or in the task
    that closes it: they must not block, and a failure must stay inside them.
    """

    def connection_opened(self, depths: ConnectionDepths) -> None:
        """The connection was built around a stream (it has not started reading yet);
        ``depths`` reads its queues (keep it weakly: it is the connection)."""

    def connection_closed(self, *, clean: bool) -> None:
        """The connection ended (called once, however it ended); ``clean=False``: it was
        lost (the peer closed it, a transport error), not closed by its owner."""

    async def observe_command(self, send: SendCommand, data: bytes, label: str) -> Reply:
        """Run ``send(data, label)`` for one command and return its reply.

        ``label`` is the command's first line, credentials redacted.
        """
        ...

    def event_received(self, event: Event) -> None:
        """Every event, before it is routed (the event may still be undecoded)."""

    def event_routed(self, event: Event, seconds: float) -> None:
        """The reader's time on ``event``: the hooks and routing (not the handlers)."""

    def wrap_handler(self, handler: EventHandler) -> EventHandler:
        """The handler to run in place of ``handler`` (to give it a context, say)."""
        ...
