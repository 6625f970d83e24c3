"""FakeFreeSWITCH: an Event Socket server with simulated channels.

It serves inbound clients on its port, and connects to outbound servers for
calls routed to a ``socket`` (:meth:`FakeFreeSWITCH.call_socket`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel

from ..protocol import Event
from ._channels import FakeChannel
from ._commands import execute_api
from ._connection import Connection
from ._destinations import Destination
from ._originate_parser import OriginateRequest
from ._outbound_socket import OutboundSocket
from ._switch import ApiHandler, Client, Switch
from ._wire import OutgoingEvent

__all__ = ["ApiHandler", "FakeFreeSWITCH"]


class FakeFreeSWITCH(Switch):
    """A FreeSWITCH that speaks inbound ESL on a loopback port, for tests and demos.

    ``serve`` is the server (start it in a task group: ``host, port = await
    task_group.start(fake.serve)``); ``running()`` does that for you. Calls are
    simulated: ``originate`` creates a channel whose far end follows the
    :class:`Destination` registered for its dial path, firing the lifecycle
    events a real switch fires. Everything runs on AnyIO's clock.
    """

    # ------------------------------------------------------------- serving

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until cancelled; reports ``(host, port)`` once listening.

        Cancelling it closes every connection and ends every simulated channel.
        """
        if self._task_group is not None:
            raise RuntimeError("this FakeFreeSWITCH is already serving")
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        async with listener, anyio.create_task_group() as task_group:
            self._task_group = task_group
            self._started_at = anyio.current_time()
            self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
            try:
                task_status.started((self.host, self.port))
                await listener.serve(self._serve_client, task_group=task_group)
            finally:
                self._task_group = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeFreeSWITCH]:
        """``async with FakeFreeSWITCH().running() as fake:``: served in its own task group.

        Leaving the block stops the server; an exception raised in the block
        propagates as itself, not wrapped in an exception group.
        """
        # The block's exception is raised again outside the task group, which would
        # otherwise wrap it in an exception group.
        failure: BaseException | None = None
        async with anyio.create_task_group() as task_group:
            try:
                await task_group.start(self.serve)
                yield self
            except GeneratorExit:
                raise
            except BaseException as exception:
                failure = exception
            finally:
                task_group.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _serve_client(self, stream: anyio.abc.SocketStream) -> None:
        connection = Connection(self, stream)
        self._connection_opened(connection)
        await connection.run()

    # ------------------------------------------------------- outbound mode

    async def call_socket(
        self,
        address: tuple[str, int],
        *,
        caller_id_name: str = "Alice",
        caller_id_number: str = "1000",
        destination_number: str = "9000",
        variables: Mapping[str, str] | None = None,
        hangup_after: float | None = None,
        mode: str = "async full",
        dtmf: str = "",
        dtmf_after: float = 1.0,
    ) -> FakeChannel:
        """A call comes in and the dialplan sends it to an outbound socket.

        The new (inbound) channel runs ``socket <host>:<port> async full``: the
        fake connects to ``address`` and speaks outbound ESL there, as the
        recorded outbound sessions do. ``hangup_after``: the caller hangs up
        that many seconds after calling; ``dtmf``: digits the caller presses
        ``dtmf_after`` seconds after the answer. Returns once the socket application
        started (connected, or failed to: then the call goes on without it).
        """
        host, port = address
        request = OriginateRequest(
            dial_path=f"sofia/internal/{caller_id_number}@{self.identity.ipv4}",
            variables=dict(variables or {}),
            application="socket",
            application_data=f"{host}:{port} {mode}".strip(),
            caller_id_name=caller_id_name,
            caller_id_number=caller_id_number,
        )
        channel = self._new_channel(
            request,
            Destination(
                answer_after=None, hangup_after=hangup_after, dtmf=dtmf, dtmf_after=dtmf_after
            ),
            direction="inbound",
            destination_number=destination_number,
        )
        channel.start_incoming()
        self._require_task_group().start_soon(channel.run, name=f"fake call {channel.uuid}")
        await channel.wait_for_application("socket")
        return channel

    async def run_socket_application(self, channel: FakeChannel, data: str) -> str:
        """The ``socket`` application: connect, then (async mode) park until the socket goes."""
        words = data.split()
        target = words[0] if words else ""
        address, _, port_text = target.rpartition(":")
        channel.variables["socket_host"] = address
        try:
            stream = await anyio.connect_tcp(address, int(port_text))
        except (OSError, ValueError):
            # FreeSWITCH logs "Socket Error!" and the dialplan goes on.
            return "_none_"
        socket = OutboundSocket(
            self,
            stream,
            channel,
            mode="async" if "async" in words[1:] else "static",
            control="full" if "full" in words[1:] else "single-channel",
        )
        channel.hold()
        self._connection_opened(socket)
        self._require_task_group().start_soon(self._run_socket, socket, channel)
        await socket.connected.wait()
        if not socket.closed.is_set():
            # mod_event_socket parks a few milliseconds after ``connect``: a ``myevents``
            # sent right behind it sees the CHANNEL_PARK (as in the recordings), one sent
            # much later may not. The fake parks once the app's setup is through: after
            # its next command, when 10 ms pass without another (0.1 s at most), so an
            # app that subscribes at once sees it whatever the scheduling.
            with anyio.move_on_after(0.1):
                await socket.first_command_after_connect.wait()
                while True:
                    seen = socket.commands_handled
                    await anyio.sleep(0.01)
                    if socket.commands_handled == seen or socket.closed.is_set():
                        break
        if socket.closed.is_set():
            return "_none_"
        async with anyio.create_task_group() as watch:

            async def unpark_when_closed() -> None:
                await socket.closed.wait()
                channel.unpark()

            # park() enters the park before the watcher first runs: no missed unpark.
            watch.start_soon(unpark_when_closed)
            await channel.park()
            watch.cancel_scope.cancel()
        return "_none_"

    async def _run_socket(self, socket: OutboundSocket, channel: FakeChannel) -> None:
        try:
            await socket.run()
        finally:
            channel.release()

    async def blast(self, events: Iterable[Event], repeat: int = 1) -> int:
        """Send ``events`` ``repeat`` times to their subscribers as fast as the
        clients read them (waiting when a client lags, never dropping).

        Each connection's frames are encoded once, in its format when the blast
        starts, then written in bursts. Returns the number of event frames sent.
        """
        outgoing = [OutgoingEvent(event) for event in events]
        bursts: list[tuple[Client, bytes, int]] = []
        for connection in list(self._connections):
            wanted = [item for item in outgoing if connection.wants(item.event)]
            if wanted:
                event_format = connection.subscription.format
                data = b"".join(item.frame(event_format) for item in wanted)
                bursts.append((connection, data, len(wanted)))
        sent = 0
        for _ in range(repeat):
            for connection, data, count in bursts:
                await connection.put_frames(data)
                sent += count
        await anyio.lowlevel.checkpoint()
        return sent

    # --------------------------------------------------------- connections

    @property
    def connection_count(self) -> int:
        """Client sockets open now (authenticated or not)."""
        return len(self._connections)

    @property
    def connection_filters(self) -> list[list[tuple[str, str]]]:
        """The ``filter`` list of each authenticated connection open now, in arrival order."""
        return [
            list(connection.subscription.filters or [])
            for connection in self._connections
            if connection.authenticated
        ]

    @property
    def authenticated_count(self) -> int:
        """Client connections open now that have authenticated."""
        return sum(1 for connection in self._connections if connection.authenticated)

    @property
    def authentications(self) -> int:
        """Successful ``auth`` commands since the fake was created."""
        return self._authentications

    async def wait_for_connections(self, count: int = 1) -> None:
        """Wait until at least ``count`` authenticated connections are open."""
        while self.authenticated_count < count:
            await self._connections_changed.wait()

    async def drop_connections(self, *, reset: bool = False) -> None:
        """Close every client socket abruptly: no disconnect notice (and with
        ``reset``, a TCP RST), as when the switch dies. Returns once closed."""
        for connection in list(self._connections):
            await connection.abort(reset=reset)

    @property
    def messages_received(self) -> list[tuple[str, dict[str, str]]]:
        """Every ``sendmsg``: the target uuid and its headers (names lower-cased)."""
        return list(self._messages)

    @property
    def commands_received(self) -> list[str]:
        """The first line of every command from every connection (passwords masked)."""
        return list(self._commands)

    async def wait_for_command(self, prefix: str) -> str:
        """The first command line received that starts with ``prefix`` (at once if one has).

        For a client in another process, whose progress the test cannot await directly.
        """
        checked = 0
        while True:
            changed = self._commands_changed
            for line in self._commands[checked:]:
                if line.startswith(prefix):
                    return line
            checked = len(self._commands)
            await changed.wait()

    # ---------------------------------------------------------------- api

    async def api(self, command: str) -> str:
        """Run an ``api`` command as a client would, returning its output."""
        name, _, argument = command.partition(" ")
        return await execute_api(self, name, argument)
