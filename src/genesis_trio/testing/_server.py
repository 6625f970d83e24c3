"""FakeFreeSWITCH: an Event Socket server with simulated channels.

It serves inbound clients on its port, and connects to outbound servers for
calls routed to a ``socket`` (:meth:`FakeFreeSWITCH.call_socket`).
"""

from __future__ import annotations

import fnmatch
import inspect
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import MappingProxyType

import anyio
import anyio.abc
import anyio.lowlevel

from .._util import collapse_single_exception_group
from ..protocol import Event
from ..protocol._fsparse import API_WHITESPACE
from ._api import BUILTIN_APIS
from ._channels import FakeChannel, OriginateRequest
from ._command_reader import Command
from ._connection import Connection, parse_log_level
from ._destinations import Destination
from ._dialplan import DEFAULT_OUTBOUND_PORT, bundle_extension
from ._event_factory import SITES, EventFactory, SwitchClock, SwitchIdentity, new_uuid
from ._outbound_socket import OutboundSocket
from ._replies import log_data
from ._wire import OutgoingEvent

__all__ = ["ApiHandler", "FakeFreeSWITCH"]

ApiHandler = Callable[[str], "str | Awaitable[str]"]

_TONE_SEGMENT = re.compile(r"%\((\d+),(\d+)")
_LOOPS = re.compile(r";loops=(\d+)")


def _generated_duration(path: str) -> float | None:
    """How long FreeSWITCH plays a generated stream: ``tone_stream://%(on,off,hz);loops=N``
    (N times the on and off times) or ``silence_stream://ms``; None for anything else."""
    if path.startswith("tone_stream://"):
        segments = _TONE_SEGMENT.findall(path)
        if not segments:
            return None
        loops = _LOOPS.search(path)
        count = int(loops.group(1)) if loops else 1
        return count * sum(int(on) + int(off) for on, off in segments) / 1000
    if path.startswith("silence_stream://"):
        milliseconds = path.removeprefix("silence_stream://").split(",")[0]
        if milliseconds.isdigit() and int(milliseconds) > 0:
            return int(milliseconds) / 1000
    return None


_LOG_LEVEL_NAMES = ("CONSOLE", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG")


class FakeFreeSWITCH:
    """A FreeSWITCH that speaks inbound ESL on a loopback port, for tests and demos.

    ``serve`` is the server (start it in a task group: ``host, port = await
    task_group.start(fake.serve)``); ``running()`` does that for you. Calls are
    simulated: ``originate`` creates a channel whose far end follows the
    :class:`Destination` registered for its dial path, firing the lifecycle
    events a real switch fires. Everything runs on AnyIO's clock.
    """

    def __init__(
        self,
        password: str = "ClueCon",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hostname: str = "fake-freeswitch",
        core_uuid: str | None = None,
        dialplan: bool = True,
    ) -> None:
        self.password = password
        self.host = host
        self.port = port
        self.identity = SwitchIdentity(
            core_uuid=core_uuid or new_uuid(), hostname=hostname, switchname=hostname
        )
        self.factory = EventFactory(self.identity, SwitchClock())
        self.global_variables: dict[str, str] = {
            "hostname": hostname,
            "switch_serial": "fake",
            "core_uuid": self.identity.core_uuid,
            "local_ip_v4": self.identity.ipv4,
            "domain": self.identity.ipv4,
        }
        self._destinations: dict[str, Destination] = {}
        # Route loopback/<ext>/default as the test bundle's dialplan does.
        self.dialplan = dialplan
        self.default_outbound_port = DEFAULT_OUTBOUND_PORT
        self._media_durations: dict[str, float] = {}
        self.default_media_duration = 1.0
        self._apis: dict[str, ApiHandler] = {}
        self._connections: list[Connection] = []
        self._channels: dict[str, FakeChannel] = {}
        self._history: list[FakeChannel] = []
        self._commands: list[str] = []
        self._messages: list[tuple[str, dict[str, str]]] = []
        self._task_group: anyio.abc.TaskGroup | None = None
        self._connections_changed = anyio.Event()
        self._authentications = 0
        self._session_count = 0
        self._peak_sessions = 0
        self._started_at = 0.0

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
        with collapse_single_exception_group():
            async with anyio.create_task_group() as task_group:
                await task_group.start(self.serve)
                try:
                    yield self
                finally:
                    task_group.cancel_scope.cancel()

    async def _serve_client(self, stream: anyio.abc.SocketStream) -> None:
        connection = Connection(self, stream)
        self._connections.append(connection)
        self._notify_connections()
        await connection.run()

    # ----------------------------------------------------------- scripting

    def add_destination(self, dial_path: str, destination: Destination | None = None) -> None:
        """Make ``dial_path`` (exact, or a ``fnmatch`` pattern such as ``user/*``) routable.

        It takes precedence over the built-in dialplan. A destination with
        ``applications`` (a loopback pair) only fits ``loopback/...`` paths."""
        destination = destination or Destination()
        if destination.applications is not None and not dial_path.startswith("loopback/"):
            raise ValueError("a Destination with applications is a loopback/... extension")
        self._destinations[dial_path] = destination

    def register_api(self, name: str, handler: ApiHandler) -> None:
        """Script ``api``/``bgapi`` ``name``: ``handler(arguments)`` returns the body
        (plain or awaitable). It replaces a built-in command of the same name."""
        if not name or any(char.isspace() for char in name):
            raise ValueError("an api name is one word")
        self._apis[name] = handler

    def set_media_duration(self, path: str, seconds: float) -> None:
        """How long playing ``path`` (a file, a stream, or an ``fnmatch`` pattern such as
        ``ivr/*``) takes; ``say:<arguments>`` sets the ``say`` application's. Anything
        not set takes as long as on FreeSWITCH for ``tone_stream://`` (its tones times
        its ``loops``) and ``silence_stream://<ms>``, else :attr:`default_media_duration`
        (1 s)."""
        if seconds < 0:
            raise ValueError("a duration is not negative")
        self._media_durations[path] = seconds

    def media_duration(self, path: str) -> float:
        found = self._media_durations.get(path)
        if found is not None:
            return found
        for pattern, seconds in self._media_durations.items():
            if fnmatch.fnmatchcase(path, pattern):
                return seconds
        generated = _generated_duration(path)
        return self.default_media_duration if generated is None else generated

    def destination_for(self, dial_path: str) -> Destination | None:
        found = self._destinations.get(dial_path)
        if found is not None:
            return found
        for pattern, destination in self._destinations.items():
            if fnmatch.fnmatchcase(dial_path, pattern):
                return destination
        return None

    # ------------------------------------------------------------ channels

    @property
    def channels(self) -> Mapping[str, FakeChannel]:
        """Live channels by uuid (a channel leaves after ``CHANNEL_DESTROY``)."""
        return MappingProxyType(self._channels)

    @property
    def channel_history(self) -> Sequence[FakeChannel]:
        """Every channel created, in order, ended ones included."""
        return tuple(self._history)

    async def hangup(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """Hang a channel up as the far end would, and wait for its ``CHANNEL_DESTROY``."""
        channel = self._channels.get(uuid)
        if channel is None:
            raise KeyError(f"no such channel: {uuid}")
        channel.request_hangup(cause)
        await channel.wait_ended()

    def _dialplan_destination(self, request: OriginateRequest) -> Destination | None:
        """``loopback/<ext>[/<context>]`` through the built-in dialplan: an extension, or
        (no match) a pair that ends with NO_ROUTE_DESTINATION, as on FreeSWITCH."""
        endpoint, _, rest = request.dial_path.partition("/")
        if not self.dialplan or endpoint != "loopback" or not rest:
            return None
        number, _, context = rest.partition("/")
        extension = None
        if context in ("", "default"):
            extension = bundle_extension(number, request.variables, self.default_outbound_port)
        return Destination(applications=extension or ())

    async def _create_channel(self, request: OriginateRequest) -> FakeChannel | None:
        destination = self.destination_for(request.dial_path)
        if destination is None:
            destination = self._dialplan_destination(request)
        if destination is None:
            return None
        if destination.setup_after:
            await anyio.sleep(destination.setup_after)
        task_group = self._require_task_group()
        if destination.applications is not None:
            return self._create_loopback_pair(request, destination, task_group)
        channel = self._new_channel(request, destination)
        channel.start()
        task_group.start_soon(channel.run, name=f"fake channel {channel.uuid}")
        return channel

    def _new_channel(
        self,
        request: OriginateRequest,
        destination: Destination,
        *,
        direction: str = "outbound",
        loopback_leg: str | None = None,
    ) -> FakeChannel:
        self._session_count += 1
        channel = FakeChannel(
            self,
            request,
            destination,
            session_id=self._session_count,
            direction=direction,
            loopback_leg=loopback_leg,
        )
        self._channels[channel.uuid] = channel
        self._history.append(channel)
        self._peak_sessions = max(self._peak_sessions, len(self._channels))
        return channel

    def _create_loopback_pair(
        self,
        request: OriginateRequest,
        destination: Destination,
        task_group: anyio.abc.TaskGroup,
    ) -> FakeChannel:
        """mod_loopback: the originated ``-a`` leg and the ``-b`` leg that runs the
        extension, each following the other's ring, answer and hangup."""
        a_leg = self._new_channel(request, destination, loopback_leg="A")
        # The -b leg gets the call's variables, but a uuid of its own.
        b_variables = {k: v for k, v in request.variables.items() if k != "origination_uuid"}
        b_request = OriginateRequest(
            dial_path=request.dial_path,
            variables=b_variables,
            caller_id_name=request.caller_id_name,
            caller_id_number=request.caller_id_number,
        )
        b_leg = self._new_channel(b_request, destination, direction="inbound", loopback_leg="B")
        if "origination_uuid" in request.variables:
            b_leg.variables["origination_uuid"] = request.variables["origination_uuid"]
        a_leg.link_loopback(b_leg)
        b_leg.link_loopback(a_leg)
        a_leg.start()
        b_leg.start_incoming()
        task_group.start_soon(a_leg.run, name=f"fake channel {a_leg.uuid}")
        task_group.start_soon(b_leg.run, name=f"fake channel {b_leg.uuid}")
        return a_leg

    def channel_ended(self, channel: FakeChannel) -> None:
        if self._channels.get(channel.uuid) is channel:
            del self._channels[channel.uuid]

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
        self._session_count += 1
        channel = FakeChannel(
            self,
            request,
            Destination(
                answer_after=None, hangup_after=hangup_after, dtmf=dtmf, dtmf_after=dtmf_after
            ),
            session_id=self._session_count,
            direction="inbound",
            destination_number=destination_number,
        )
        self._channels[channel.uuid] = channel
        self._history.append(channel)
        self._peak_sessions = max(self._peak_sessions, len(self._channels))
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
        self._connections.append(socket)
        self._notify_connections()
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

    def send_dtmf(self, uuid: str, digits: str, *, duration_ms: int = 250) -> None:
        """The caller on ``uuid`` presses ``digits``: DTMF events, and digits to collect."""
        channel = self._channels.get(uuid)
        if channel is None:
            raise KeyError(f"no such channel: {uuid}")
        if not digits or any(digit not in "0123456789*#ABCDabcd" for digit in digits):
            raise ValueError(f"not DTMF digits: {digits!r}")
        channel.receive_dtmf(digits, duration_ms=duration_ms)

    # -------------------------------------------------------------- events

    def fire(self, event: Event) -> None:
        """Deliver ``event`` now to every connection that subscribed to it."""
        outgoing: OutgoingEvent | None = None
        for connection in self._connections:
            if connection.wants(event):
                outgoing = outgoing or OutgoingEvent(event)
                connection.offer_event(outgoing)

    async def emit(self, event: Event) -> None:
        """Deliver ``event`` to every subscribed connection (format and filters respected)."""
        self.fire(event)
        await anyio.lowlevel.checkpoint()

    def build_event(
        self,
        name: str,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        body: str | None = None,
        *,
        subclass: str | None = None,
    ) -> Event:
        """An event with this switch's standard headers (Core-UUID, dates, sequence...)."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        return self.factory.event(name, pairs, body, subclass=subclass)

    async def blast(self, events: Iterable[Event], repeat: int = 1) -> int:
        """Send ``events`` ``repeat`` times to their subscribers as fast as the
        clients read them (waiting when a client lags, never dropping).

        Each connection's frames are encoded once, in its format when the blast
        starts, then written in bursts. Returns the number of event frames sent.
        """
        outgoing = [OutgoingEvent(event) for event in events]
        bursts: list[tuple[Connection, bytes, int]] = []
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

    def log(
        self,
        text: str,
        *,
        level: str | int = "INFO",
        file: str = "mod_commands.c",
        function: str = "log_function",
        line: int = 7247,
        text_channel: int = 3,
    ) -> None:
        """Send a log line to connections that asked for it (``log <level>``)."""
        number = level if isinstance(level, int) else parse_log_level(level)
        if number is None:
            number = 6
        name = _LOG_LEVEL_NAMES[number] if number < len(_LOG_LEVEL_NAMES) else "DEBUG"
        now = self.factory.clock.now()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        micros = int((now % 1) * 1_000_000)
        log_line = f"{stamp}.{micros:06d} 100.00% [{name}] {file}:{line} {text}\n"
        frame = log_data(
            log_line,
            level=number,
            text_channel=text_channel,
            file=file,
            function=function,
            line_number=line,
        )
        for connection in self._connections:
            if connection.authenticated:
                connection.offer_log(number, frame)

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

    def _notify_connections(self) -> None:
        self._connections_changed.set()
        self._connections_changed = anyio.Event()

    def _connection_authenticated(self, connection: Connection) -> None:
        self._authentications += 1
        self._notify_connections()

    def _connection_closed(self, connection: Connection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)
            self._notify_connections()

    def _record_command(self, line: str) -> None:
        verb = line.partition(" ")[0].lower()
        if verb in ("auth", "userauth"):
            line = f"{line.partition(' ')[0]} ******"
        self._commands.append(line)

    # ---------------------------------------------------------------- api

    async def api(self, command: str) -> str:
        """Run an ``api`` command as a client would, returning its output."""
        name, _, argument = command.partition(" ")
        return await self._execute_api(name, argument)

    async def _execute_api(self, name: str, argument: str) -> str:
        # switch_api_execute strips whitespace from both ends of the argument.
        stripped = argument.strip(API_WHITESPACE)
        handler = self._apis.get(name)
        if handler is not None:
            result = handler(stripped)
            body = await result if inspect.isawaitable(result) else result
        else:
            builtin = BUILTIN_APIS.get(name)
            if builtin is None:
                return f"-ERR {name} Command not found!\n"
            body = await builtin(self, stripped)
        headers = [("API-Command", name)]
        if argument:
            headers.append(("API-Command-Argument", argument))
        self.fire(self.factory.event("API", headers))
        return str(body)

    def _start_job(self, name: str, argument: str, job_uuid: str | None) -> str:
        job_uuid = job_uuid or new_uuid()
        self._require_task_group().start_soon(
            self._run_job, name, argument, job_uuid, name=f"bgapi {name} {job_uuid}"
        )
        return job_uuid

    async def _run_job(self, name: str, argument: str, job_uuid: str) -> None:
        body = await self._execute_api(name, argument)
        headers = [("Job-UUID", job_uuid), ("Job-Command", name)]
        if argument:
            headers.append(("Job-Command-Arg", argument))
        self.fire(self.factory.event("BACKGROUND_JOB", headers, body))

    def _sendevent(self, command: Command) -> str:
        event_uuid = new_uuid()
        name = command.line.partition(" ")[2].strip() or "CLONE"
        headers = [("Command", command.line), *command.headers, ("Event-UUID", event_uuid)]
        subclass = command.header("Event-Subclass")
        if name.upper() == "CUSTOM" and subclass is not None:
            # switch_event_set_subclass_name moves the subclass to the top.
            headers = [
                ("Event-Subclass", subclass),
                *(pair for pair in headers if pair[0].lower() != "event-subclass"),
            ]
        target = command.header("Unique-ID")
        if target is not None and target in self._channels:
            # An event for a live session is queued to it, not fired.
            return f"+OK {event_uuid}"
        standard = self.factory.standard_headers(name, SITES["SENDEVENT"])
        self.fire(Event([*headers, *standard], command.body))
        return f"+OK {event_uuid}"

    def _sendmsg(self, command: Command, uuid: str) -> str:
        uuid = uuid or (command.header("session-id") or "")
        self._messages.append((uuid, {name.lower(): value for name, value in command.headers}))
        channel = self._channels.get(uuid)
        if channel is None:
            return f"-ERR invalid session id [{uuid}]"
        call_command = (command.header("call-command") or "").lower()
        if call_command == "hangup":
            channel.request_hangup(command.header("hangup-cause") or "NORMAL_CLEARING")
        elif call_command == "execute":
            # switch_ivr_parse_event: the body is the argument only when the
            # header is absent or empty and content-type is text/plain.
            argument = command.header("execute-app-arg")
            content_type = (command.header("content-type") or "").lower()
            if not argument and content_type == "text/plain" and command.body:
                argument = command.body
            loops = command.header("loops") or "1"
            channel.queue_execute(
                command.header("execute-app-name") or "",
                argument or "",
                command.header("Event-UUID") or new_uuid(),
                loops=int(loops) if loops.isdigit() else 1,
                message=(("Command", command.line), *command.headers),
            )
        return "+OK"

    def _require_task_group(self) -> anyio.abc.TaskGroup:
        if self._task_group is None:
            raise RuntimeError("the FakeFreeSWITCH is not serving")
        return self._task_group
