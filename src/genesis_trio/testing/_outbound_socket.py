"""FreeSWITCH's end of an outbound socket: the ``socket`` application connected to an app.

It behaves as ``outbound_session_plain`` / ``outbound_session_json`` show: no
greeting; ``connect`` answers with the channel data as a command/reply;
``myevents`` / ``linger`` / ``sendmsg`` without a uuid act on the call; after
the hangup a lingering socket gets the last events, then a ``linger``
disconnect notice, and keeps the socket until ``exit`` (or the linger time);
without linger the goodbye comes at the hangup. ``CHANNEL_DESTROY`` never
reaches the socket: the channel fires it once the socket let go of it.
"""

from __future__ import annotations

import anyio
import anyio.abc

from ._channels import FakeChannel
from ._command_reader import Command
from ._commands import session_command
from ._connection import Connection
from ._event_factory import SITES
from ._replies import command_reply, connect_reply, linger_notice, session_disconnect_notice
from ._switch import Switch

__all__ = ["OutboundSocket"]


class OutboundSocket(Connection):
    """One outbound socket session, from the TCP connect to the goodbye."""

    greeting = b""

    def __init__(
        self,
        host: Switch,
        stream: anyio.abc.SocketStream,
        channel: FakeChannel,
        *,
        mode: str = "async",
        control: str = "full",
    ) -> None:
        super().__init__(host, stream)
        self.channel = channel
        self.mode = mode
        self.control = control
        # An outbound socket needs no auth: it is the switch that connected.
        self.authenticated = True
        self.connected = anyio.Event()
        self.first_command_after_connect = anyio.Event()
        self.commands_handled = 0
        self.closed = anyio.Event()
        self.linger: int | None = None  # None: no linger; -1: until exit; else seconds
        self.diverting = False
        self.exited = False
        self._linger_noticed = False

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as watcher:
                watcher.start_soon(self._follow_the_call)
                try:
                    await super().run()
                finally:
                    watcher.cancel_scope.cancel()
        finally:
            self.connected.set()
            self.first_command_after_connect.set()
            self.closed.set()

    async def _follow_the_call(self) -> None:
        channel = self.channel
        await channel.hung_up.wait()
        if self.linger is None:
            self.offer_frame(session_disconnect_notice(channel.uuid), close_after=True)
            return
        await channel.reported.wait()
        linger = self.linger
        self._queue_linger_notice()
        if linger >= 0:
            await anyio.sleep(linger)
            self.offer_frame(session_disconnect_notice(channel.uuid), close_after=True)

    def _queue_linger_notice(self) -> None:
        if self.linger is not None and not self._linger_noticed:
            self._linger_noticed = True
            channel = self.channel
            self.offer_frame(linger_notice(channel.uuid, channel.name, self.linger))

    async def _handle(self, command: Command) -> bool:
        was_connected = self.connected.is_set()
        try:
            return await self._handle_command(command)
        finally:
            self.commands_handled += 1
            if was_connected:
                self.first_command_after_connect.set()

    async def _handle_command(self, command: Command) -> bool:
        verb, _, rest = command.line.partition(" ")
        verb = verb.lower()
        rest = rest.strip()
        channel = self.channel
        if verb == "exit":
            self.exited = True
            if self.linger is not None and channel.hung_up.is_set():
                # A switch finishes a hangup (HANGUP_COMPLETE, the linger notice) long
                # before a client's ``exit`` can arrive: what it queued goes out first.
                await channel.reported.wait()
                self._queue_linger_notice()
            # Behind what is queued (the writer may hold some already), then the close.
            self.offer_frame(
                command_reply("+OK bye") + session_disconnect_notice(channel.uuid),
                close_after=True,
            )
            return True
        if verb == "connect":
            data = [
                *self._host.factory.standard_headers("CHANNEL_DATA", SITES["CHANNEL_DATA"]),
                *channel.caller_profile("Channel-"),
                *channel.channel_data(),
            ]
            await self._stream.send(connect_reply(data, mode=self.mode, control=self.control))
            self.connected.set()
            return True
        reply = session_command(self._host, self, command)
        if reply is None:
            return await super()._handle(command)
        await self._reply(reply)
        return True
