"""The switch itself: its identity, its channels, and the events it fires.

:class:`Switch` is the model under :class:`~genesis_trio.testing.FakeFreeSWITCH`:
it routes an originate (scripted destinations first, then the test bundle's
dialplan), creates the channels and loopback pairs, keeps the tables ``show`` and
``uuid_*`` read, and fires events to the clients that subscribed. It knows its
clients only as :class:`Client` (what the wire's connections offer), and leaves
the ``socket`` application, which opens a connection, to the server above it.
"""

from __future__ import annotations

import fnmatch
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from ..protocol import Event
from ._channel_core import ChannelCore
from ._channels import FakeChannel
from ._destinations import Destination
from ._dialplan import DEFAULT_OUTBOUND_PORT, bundle_extension
from ._event_factory import EventFactory, SwitchClock, SwitchIdentity, new_uuid
from ._originate_parser import OriginateRequest
from ._replies import LOG_LEVELS, log_data, parse_log_level
from ._subscriptions import Subscription
from ._wire import OutgoingEvent

__all__ = ["ApiHandler", "Client", "Switch"]

ApiHandler = Callable[[str], "str | Awaitable[str]"]

_T = TypeVar("_T")
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


def _lookup(table: Mapping[str, _T], key: str) -> _T | None:
    """The entry for ``key`` itself, else the first ``fnmatch`` pattern matching it."""
    found = table.get(key)
    if found is not None:
        return found
    for pattern, value in table.items():
        if fnmatch.fnmatchcase(key, pattern):
            return value
    return None


class Client(Protocol):
    """A connection to the switch, as the switch sees it (the wire implements it)."""

    @property
    def authenticated(self) -> bool: ...

    @property
    def subscription(self) -> Subscription: ...

    def wants(self, event: Event) -> bool: ...

    def offer_event(self, outgoing: OutgoingEvent) -> None: ...

    def offer_log(self, level: int, frame: bytes) -> None: ...

    async def put_frames(self, data: bytes) -> None: ...

    async def abort(self, *, reset: bool = False) -> None: ...


class Switch(ABC):
    """The state of a fake FreeSWITCH and what changes it, without any socket."""

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
        self._connections: list[Client] = []
        self._channels: dict[str, FakeChannel] = {}
        self._history: list[FakeChannel] = []
        self._commands: list[str] = []
        self._commands_changed = anyio.Event()
        self._messages: list[tuple[str, dict[str, str]]] = []
        self._task_group: anyio.abc.TaskGroup | None = None
        self._connections_changed = anyio.Event()
        self._authentications = 0
        self._session_count = 0
        self._peak_sessions = 0
        self._started_at = 0.0

    @abstractmethod
    async def run_socket_application(self, channel: FakeChannel, data: str) -> str:
        """The ``socket`` application: it opens a connection, so the server runs it."""

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
        found = _lookup(self._media_durations, path)
        if found is not None:
            return found
        generated = _generated_duration(path)
        return self.default_media_duration if generated is None else generated

    def destination_for(self, dial_path: str) -> Destination | None:
        return _lookup(self._destinations, dial_path)

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
        channel = self._live_channel(uuid)
        channel.request_hangup(cause)
        await channel.wait_ended()

    def send_dtmf(self, uuid: str, digits: str, *, duration_ms: int = 250) -> None:
        """The caller on ``uuid`` presses ``digits``: DTMF events, and digits to collect."""
        channel = self._live_channel(uuid)
        if not digits or any(digit not in "0123456789*#ABCDabcd" for digit in digits):
            raise ValueError(f"not DTMF digits: {digits!r}")
        channel.receive_dtmf(digits, duration_ms=duration_ms)

    def _live_channel(self, uuid: str) -> FakeChannel:
        channel = self._channels.get(uuid)
        if channel is None:
            raise KeyError(f"no such channel: {uuid}")
        return channel

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
        destination_number: str | None = None,
    ) -> FakeChannel:
        self._session_count += 1
        channel = FakeChannel(
            self,
            request,
            destination,
            session_id=self._session_count,
            direction=direction,
            loopback_leg=loopback_leg,
            destination_number=destination_number,
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

    def channel_ended(self, channel: ChannelCore[Any]) -> None:
        if self._channels.get(channel.uuid) is channel:
            del self._channels[channel.uuid]

    def _require_task_group(self) -> anyio.abc.TaskGroup:
        if self._task_group is None:
            raise RuntimeError("the FakeFreeSWITCH is not serving")
        return self._task_group

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
        name = LOG_LEVELS[number] if number < len(LOG_LEVELS) else "DEBUG"
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

    # ------------------------------------------------- what the wire reports

    def _connection_opened(self, connection: Client) -> None:
        self._connections.append(connection)
        self._notify_connections()

    def _connection_authenticated(self) -> None:
        self._authentications += 1
        self._notify_connections()

    def _connection_closed(self, connection: Client) -> None:
        if connection in self._connections:
            self._connections.remove(connection)
            self._notify_connections()

    def _notify_connections(self) -> None:
        self._connections_changed.set()
        self._connections_changed = anyio.Event()

    def _record_command(self, line: str) -> None:
        verb = line.partition(" ")[0].lower()
        if verb in ("auth", "userauth"):
            line = f"{line.partition(' ')[0]} ******"
        self._commands.append(line)
        self._commands_changed.set()
        self._commands_changed = anyio.Event()
