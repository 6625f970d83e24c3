"""The connection adapter: an ESL byte stream turned into commands, replies and events.

The one layer between the sans-IO :mod:`genesis_trio.protocol` and the
clients. It owns the reader task, the outbox and reply matching, event
routing, and the mapping of transport errors to :class:`ConnectionLost`. It
imports neither the clients nor tracing: an observer plugs in through
:class:`ConnectionObserver`.
"""

from .._dispatch import EventHandler
from ._connection import ESLConnection
from ._observer import ConnectionDepths, ConnectionObserver, SendCommand
from ._outbox import Reply

__all__ = [
    "ConnectionDepths",
    "ConnectionObserver",
    "ESLConnection",
    "EventHandler",
    "Reply",
    "SendCommand",
]
