"""What every ESL client is built on: its connection, what it asked of the switch, raw commands.

:class:`~genesis_trio.ESLClient` (``_client.py``) builds the command surface
on :class:`ClientCore`; a reconnecting :class:`~genesis_trio.Inbound` replays
the :class:`_SwitchState` of its last connection on the next one.
"""

# A command's ``timeout=`` is the deadline of its own cancel scope (an
# OperationTimeout when it fires), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import anyio

from ._dispatch import DEFAULT_HANDLER_THREADS
from ._exceptions import CommandError
from ._filters import SwitchFilters
from ._stream import ESLConnection, Reply
from ._util import redact_command
from .protocol import CommandReply, EventFormat
from .protocol import commands as cmd

if TYPE_CHECKING:
    from .tracing import ConnectionTelemetry

__all__ = ["ClientCore", "is_error"]


def is_error(text: str) -> bool:
    return text.startswith("-ERR") or text.startswith("-USAGE")


class _SwitchState:
    """What one connection asked of FreeSWITCH: it starts empty with every new connection."""

    def __init__(self, client: ClientCore, connection: ESLConnection) -> None:
        self.connection = connection
        self.subscriptions: dict[str, int] = {}
        self.subscribed_all = False
        self.event_format: EventFormat = "plain"
        # The ``log`` level asked for (None: no log lines), and ``divert_events``: what a
        # reconnecting Inbound asks for again on its next connection.
        self.log_level: int | str | None = None
        self.divert_events = False
        self.filters = SwitchFilters(
            connection, lambda data, label: client._send_checked(data, label, check=False)
        )

    def event_words(self) -> list[str]:
        """The words of one ``event`` command asking for these subscriptions again."""
        return ["ALL"] if self.subscribed_all else event_command_words(self.subscriptions)


def event_command_words(names: Iterable[str]) -> list[str]:
    """The words of one ``event`` command for these event names and CUSTOM subclasses:
    the names, then ``CUSTOM`` and the subclasses (FreeSWITCH reads a subclass only
    after ``CUSTOM``); just ``ALL`` when it is among them."""
    names = list(names)
    if "ALL" in names:
        return ["ALL"]
    plain = [n for n in names if "::" not in n and n != "CUSTOM"]
    subclasses = [n for n in names if "::" in n]
    custom = ["CUSTOM", *subclasses] if "CUSTOM" in names or subclasses else []
    return plain + custom


class ClientCore:
    """The connection a client talks over, per-connection switch state, raw commands."""

    _connection: ESLConnection[ConnectionTelemetry]
    #: The default ``timeout=`` of every command this client sends (None: no
    #: limit of its own, the caller's cancel scope decides).
    command_timeout: float | None = None
    # True once an outbound Session turned ``myevents`` on: the connection then
    # carries its own call's events only. Asked here, not by isinstance(Session),
    # so the channel layer above the clients never imports the Session module.
    _myevents: bool = False
    #: How many plain ``def`` handlers registered with :meth:`on` may run at once (each in a
    #: worker thread of its own).
    handler_threads: int = DEFAULT_HANDLER_THREADS

    def __init__(self) -> None:
        self._switch_state: _SwitchState | None = None
        self._thread_limiter: anyio.CapacityLimiter | None = None

    @property
    def handler_limiter(self) -> anyio.CapacityLimiter:
        """The limiter of the worker threads that run this client's plain ``def`` handlers."""
        # Made on first use: a limiter belongs to a running event loop.
        if self._thread_limiter is None:
            self._thread_limiter = anyio.CapacityLimiter(self.handler_threads)
        return self._thread_limiter

    def _own_call_uuid(self) -> str | None:
        """The call this connection belongs to (an outbound Session's, once connected)."""
        return None

    @property
    def connection(self) -> ESLConnection[ConnectionTelemetry]:
        return self._connection

    def _state(self) -> _SwitchState:
        state = self._switch_state
        if state is None or state.connection is not self._connection:
            state = self._switch_state = _SwitchState(self, self._connection)
        return state

    @property
    def _switch_subscriptions(self) -> dict[str, int]:
        return self._state().subscriptions

    @property
    def _subscribed_all(self) -> bool:
        return self._state().subscribed_all

    @_subscribed_all.setter
    def _subscribed_all(self, value: bool) -> None:
        self._state().subscribed_all = value

    @property
    def _event_format(self) -> EventFormat:
        return self._state().event_format

    @_event_format.setter
    def _event_format(self, value: EventFormat) -> None:
        self._state().event_format = value

    @property
    def _filters(self) -> SwitchFilters:
        return self._state().filters

    @property
    def filters(self) -> list[tuple[str, str]]:
        """The FreeSWITCH-side filters added with :meth:`filter` on the open connection."""
        return self._filters.user_filters if self.is_connected else []

    @property
    def switch_filters(self) -> list[tuple[str, str]]:
        """Every filter the open connection has on the switch: yours and the library's own.

        The library's (``Job-UUID`` of a running bgapi, ``Unique-ID`` of a followed
        channel) are there only while you have filters; see ``docs/inbound.md``.
        """
        return self._filters.installed if self.is_connected else []

    @property
    def is_connected(self) -> bool:
        conn = getattr(self, "_connection", None)
        return conn is not None and conn.is_open

    # --- raw ---------------------------------------------------------------
    def _timeout(self, timeout: float | None) -> float | None:
        return self.command_timeout if timeout is None else timeout

    async def send(self, command: str, *, timeout: float | None = None) -> Reply:
        """Send one raw command line and return FreeSWITCH's reply as it is.

        Never raises on ``-ERR``: this is the escape hatch for raw replies.
        """
        return await self._connection.send_command(
            cmd.raw(command), redact_command(command), timeout=self._timeout(timeout)
        )

    async def _send_checked(
        self, data: bytes, label: str, *, check: bool = True, timeout: float | None = None
    ) -> CommandReply:
        reply = await self._connection.send_command(data, label, timeout=self._timeout(timeout))
        if not isinstance(reply, CommandReply):
            raise CommandError(label, f"unexpected reply {type(reply).__name__}")
        if check and not reply.ok:
            raise CommandError(label, reply.reply_text)
        return reply
