"""Session: the ESL connection FreeSWITCH opened to us for one call (outbound mode)."""

# The API gives blocking operations a ``timeout=``: it becomes the
# deadline of the operation's own cancel scope (see _outcome.py).
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVarTuple, overload

import anyio
import anyio.abc

from ._client import ESLClient
from ._exceptions import ChannelError, CommandError, ConnectionLost
from ._stream import ESLConnection, Reply
from ._util import LazyEvent
from .channel import Channel
from .protocol import MYEVENTS_NAMES, CommandReply, DisconnectNotice, Event, EventFormat
from .protocol import commands as cmd

if TYPE_CHECKING:
    from .tracing import ConnectionTelemetry

__all__ = ["MYEVENTS_NAMES", "Session"]


_TaskArgs = TypeVarTuple("_TaskArgs")


def _myevents_command(event_format: EventFormat) -> bytes:
    # Plain is the default: send it bare, as FreeSWITCH's own examples (and our captures) do.
    if event_format == "plain":
        return cmd.raw("myevents")
    return cmd.myevents(event_format=event_format)


def _check_reply(reply: Reply, label: str) -> None:
    """What :meth:`ESLClient._send_checked` checks, for a reply that came in a pipeline."""
    if not isinstance(reply, CommandReply):
        raise CommandError(label, f"unexpected reply {type(reply).__name__}")
    if not reply.ok:
        raise CommandError(label, reply.reply_text)


class Session(ESLClient):
    """One outbound call: FreeSWITCH's ``socket`` application connected to our server.

    The :class:`~genesis_trio.Outbound` server sets it up (``connect``,
    ``myevents``, ``linger``, each optional) and hands it to your handler.
    ``session.context`` is the channel data of the ``connect`` reply,
    ``session.uuid`` the call's uuid and ``session.channel`` its
    :class:`~genesis_trio.Channel`. Everything :class:`~genesis_trio.ESLClient`
    offers (``api``, ``sendmsg``, ``events``, ``divert_events``, ...) works
    here too.

    Notices: :attr:`lingering` is set when FreeSWITCH says the channel hung
    up but keeps the socket open for the remaining events (``linger``);
    :attr:`disconnected` when it says goodbye for good. Without linger, that
    goodbye is how a hangup shows: pending operations then raise
    :class:`~genesis_trio.ChannelHangup`.
    """

    def __init__(
        self, connection: ESLConnection[ConnectionTelemetry], task_group: anyio.abc.TaskGroup
    ) -> None:
        super().__init__()
        self._connection = connection
        self._task_group = task_group
        self._context: Event | None = None
        self._channel: Channel | None = None
        self._myevents = False
        self._exiting = False
        self.linger_seconds: int | None = None
        # The two notices' events, made when first asked for (most handlers never look).
        self._lingering = LazyEvent()
        self._disconnected = LazyEvent()
        self.linger_notice: DisconnectNotice | None = None
        self.disconnect_notice: DisconnectNotice | None = None
        connection.add_notice_listener(self._on_notice)

    def __repr__(self) -> str:
        uuid = self._context.get("Unique-ID") if self._context is not None else None
        return f"<Session {uuid or 'not connected'}>"

    # --- what the connect reply told us ----------------------------------------------
    @property
    def connected(self) -> bool:
        """True once ``connect`` returned the channel data."""
        return self._context is not None

    @property
    def context(self) -> Event:
        """The channel data FreeSWITCH sent in reply to ``connect``."""
        if self._context is None:
            raise RuntimeError("the session is not connected yet: call connect() first")
        return self._context

    @property
    def uuid(self) -> str:
        """The call's uuid (``Unique-ID`` of the connect reply)."""
        context = self.context
        uuid = context.get("Unique-ID") or context.get("Channel-Unique-ID")
        if uuid is None:
            raise ChannelError("the connect reply carries no Unique-ID")
        return uuid

    @property
    def channel(self) -> Channel:
        """The call's channel: answer, playback, wait, on_dtmf, ... on it."""
        if self._channel is None:
            raise RuntimeError("the session is not connected yet: call connect() first")
        return self._channel

    @property
    def lingering(self) -> anyio.Event:
        """Set when FreeSWITCH said the channel hung up and it lingers (``linger``)."""
        return self._lingering.event

    @property
    def disconnected(self) -> anyio.Event:
        """Set when the connection ended: FreeSWITCH's goodbye, or ours."""
        return self._disconnected.event

    @property
    def myevents_enabled(self) -> bool:
        return self._myevents

    def _own_call_uuid(self) -> str | None:
        return self.uuid if self.connected else None

    # --- setup ------------------------------------------------------------------------
    async def connect(self) -> Event:
        """Send ``connect``; its reply is the channel data (also :attr:`context`)."""
        reply = await self._connection.send_command(cmd.connect(), "connect")
        return self._connected(reply)

    def _connected(self, reply: Reply) -> Event:
        if not isinstance(reply, CommandReply) or reply.event is None:
            text = reply.reply_text if isinstance(reply, CommandReply) else type(reply).__name__
            raise CommandError("connect", f"no channel data in the reply ({text})")
        self._context = reply.event
        channel = Channel._for_session(self, self.uuid, reply.event)
        self._channel = channel
        if self._connection.telemetry is not None:
            self._connection.telemetry.bind_call(channel.uuid)
        return reply.event

    async def myevents(self, event_format: EventFormat = "plain") -> None:
        """Receive every event of this call, and only those (``myevents``)."""
        await self._send_checked(_myevents_command(event_format), "myevents")
        self._myevents_on(event_format)

    def _myevents_on(self, event_format: EventFormat) -> None:
        self._event_format = event_format
        self._myevents = True
        # Further ``event`` commands add names, still limited to this call.
        for name in MYEVENTS_NAMES:
            self._switch_subscriptions.setdefault(name, 0)

    async def linger(self, seconds: int | None = None) -> None:
        """Keep the socket after the hangup until the last events are sent.

        Without ``seconds`` FreeSWITCH lingers until we leave (``exit``).
        """
        await self._send_checked(cmd.linger(seconds), "linger")
        self.linger_seconds = -1 if seconds is None else seconds

    async def nolinger(self) -> None:
        await self._send_checked(cmd.nolinger(), "nolinger")
        self.linger_seconds = None

    async def setup(
        self,
        *,
        connect: bool = True,
        myevents: bool = True,
        event_format: EventFormat = "plain",
        linger: bool | int = True,
    ) -> None:
        """What the Outbound server does before calling the handler.

        ``connect`` (channel data), ``myevents`` (this call's events, plain or
        json), ``linger`` (True: until we leave; an int: that many seconds;
        False: no linger); with myevents off, ``event`` for the channel events
        a Channel needs. The commands go out together in one write and
        FreeSWITCH runs them back to back: ``myevents`` takes effect right
        after ``connect``, before the call moves on (the socket application
        parks the call as soon as it is connected), and setting up costs one
        round trip, not three.
        """
        seconds = None if linger is True else int(linger)
        steps: list[tuple[bytes, str, Callable[[Reply], object]]] = []
        if connect:
            steps.append((cmd.connect(), "connect", self._connected))
        if myevents:

            def myevents_on(reply: Reply) -> None:
                _check_reply(reply, "myevents")
                self._myevents_on(event_format)

            steps.append((_myevents_command(event_format), "myevents", myevents_on))
        if linger is not False:

            def lingering(reply: Reply) -> None:
                _check_reply(reply, "linger")
                self.linger_seconds = -1 if seconds is None else seconds

            steps.append((cmd.linger(seconds), "linger", lingering))
        if steps:
            await self._connection.send_pipelined(
                [(data, label) for data, label, _ in steps],
                timeout=self._timeout(None),
                on_reply=lambda index, reply: steps[index][2](reply),
            )
        if self._channel is not None:
            await self._channel._ensure_events()

    async def resume(self) -> None:
        """Let the dialplan continue after the socket closes (``resume``)."""
        await self._send_checked(cmd.resume(), "resume")

    async def bgapi_event(self, command: str, *, timeout: float | None = None) -> Event:
        if self._myevents:
            raise ChannelError(
                "BACKGROUND_JOB events never reach a myevents session: use api(), "
                "or an Inbound connection for bgapi"
            )
        return await super().bgapi_event(command, timeout=timeout)

    # --- call control (the session's channel) ---------------------------------------------
    @overload
    async def execute(
        self,
        application: str,
        arg: str | None = None,
        *,
        block: Literal[True] = True,
        timeout: float | None = None,
        event_lock: bool = False,
        asynchronous: bool = False,
        loops: int | None = None,
        event_uuid: str | None = None,
        expand: bool = False,
    ) -> Event: ...
    @overload
    async def execute(
        self,
        application: str,
        arg: str | None = None,
        *,
        block: Literal[False],
        timeout: float | None = None,
        event_lock: bool = False,
        asynchronous: bool = False,
        loops: int | None = None,
        event_uuid: str | None = None,
        expand: bool = False,
    ) -> str: ...
    async def execute(
        self,
        application: str,
        arg: str | None = None,
        *,
        block: bool = True,
        timeout: float | None = None,
        event_lock: bool = False,
        asynchronous: bool = False,
        loops: int | None = None,
        event_uuid: str | None = None,
        expand: bool = False,
    ) -> Event | str:
        """Run a dialplan application on this call; see :meth:`Channel.execute`."""
        if block:
            return await self.channel.execute(
                application,
                arg,
                timeout=timeout,
                event_lock=event_lock,
                asynchronous=asynchronous,
                loops=loops,
                event_uuid=event_uuid,
                expand=expand,
            )
        return await self.channel.execute(
            application,
            arg,
            block=False,
            timeout=timeout,
            event_lock=event_lock,
            asynchronous=asynchronous,
            loops=loops,
            event_uuid=event_uuid,
            expand=expand,
        )

    async def hangup(
        self, cause: str = "NORMAL_CLEARING", *, timeout: float | None = 10.0
    ) -> Event | None:
        """Hang up the call (``sendmsg`` ``call-command: hangup``)."""
        return await self.channel.hangup(cause, timeout=timeout)

    async def getvar(self, name: str) -> str | None:
        """A channel variable of this call (``uuid_getvar``); None when unset."""
        return await self.channel.get_variable(name)

    async def setvar(self, name: str, value: str | None) -> None:
        """Set (or with None, unset) a channel variable of this call."""
        await self.channel.set_variable(name, value)

    # --- tasks -------------------------------------------------------------------------
    def start_soon(
        self,
        func: Callable[[*_TaskArgs], Coroutine[Any, Any, object]],
        *args: *_TaskArgs,
        name: object = None,
    ) -> None:
        """Run a task owned by this session: it is cancelled when the session ends."""
        self._task_group.start_soon(func, *args, name=name)

    # --- notices and closing -----------------------------------------------------------------
    def _on_notice(self, notice: DisconnectNotice) -> None:
        if notice.linger:
            self.linger_notice = notice
            if self._channel is not None:
                self._channel._status.mark_gone()
            self._lingering.set()
            return
        self.disconnect_notice = notice
        if not self._exiting and self._channel is not None:
            # Unasked-for goodbye on an outbound socket: the call is over.
            self._channel._status.mark_gone()
        self._disconnected.set()

    async def aclose(self, *, grace: float = 2.0) -> None:
        """Leave the call: ``exit``, then close the socket (shielded, ``grace`` seconds)."""
        self._exiting = True
        try:
            await self._connection.aclose(send_exit=True, grace=grace)
        except ConnectionLost:
            pass
        finally:
            self._disconnected.set()
            if self._channel is not None:
                self._channel._release()
