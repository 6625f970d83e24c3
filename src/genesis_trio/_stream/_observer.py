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

__all__ = ["ConnectionObserver", "SendCommand"]

#: What :meth:`ConnectionObserver.observe_command` wraps: ``send(data, label) -> reply``.
SendCommand = Callable[[bytes, str], Awaitable[Reply]]


class ConnectionObserver(Protocol):
    """What a connection tells whoever observes it.

    The synchronous methods run in the connection's reader or in the task
    that closes it: they must not block, and a failure must stay inside them.
    """

    def connection_opened(self) -> None:
        """The connection was built around a stream (it has not started reading yet)."""

    def connection_closed(self) -> None:
        """The connection ended (called once, however it ended)."""

    async def observe_command(self, send: SendCommand, data: bytes, label: str) -> Reply:
        """Run ``send(data, label)`` for one command and return its reply.

        ``label`` is the command's first line, credentials redacted.
        """
        ...

    def event_received(self, event: Event) -> None:
        """Every event, before it is routed (the event may still be undecoded)."""

    def wrap_handler(self, handler: EventHandler) -> EventHandler:
        """The handler to run in place of ``handler`` (to give it a context, say)."""
        ...
