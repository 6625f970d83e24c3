"""What a simulated channel is: its identity, its state, and what can be waited for.

The channel model is built in layers, each a class adding one job to the one below:
:class:`ChannelCore` (this module: the attributes and the views), ``ChannelHeaders``
(the header blocks its events carry), ``ChannelLifecycle`` (creation, ring, answer,
hangup), ``ChannelMedia`` (media time, ``uuid_break``, DTMF), ``ChannelSession`` (the
session task running applications, park and the ``sendmsg`` queue) and, on top,
:class:`~genesis_trio.testing.FakeChannel` (bridging, and the applications it runs).
A lower layer calls up only through an abstract method the layer above fills in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

import anyio

from ..protocol import Event
from ._destinations import Destination
from ._event_factory import EventFactory, new_uuid
from ._originate_parser import OriginateRequest

__all__ = [
    "CALL_STATE_NUMBERS",
    "CHANNEL_STATE_NUMBERS",
    "ENDPOINT_SOURCES",
    "ApplicationRun",
    "BoundApplication",
    "ChannelCore",
    "ChannelHost",
    "HostT",
    "QueuedExecute",
]

CHANNEL_STATE_NUMBERS = {
    "CS_NEW": 0,
    "CS_INIT": 1,
    "CS_ROUTING": 2,
    "CS_SOFT_EXECUTE": 3,
    "CS_EXECUTE": 4,
    "CS_EXCHANGE_MEDIA": 5,
    "CS_PARK": 6,
    "CS_CONSUME_MEDIA": 7,
    "CS_HIBERNATE": 8,
    "CS_RESET": 9,
    "CS_HANGUP": 10,
    "CS_REPORTING": 11,
    "CS_DESTROY": 12,
    "CS_NONE": 13,
}

CALL_STATE_NUMBERS = {
    "DOWN": 0,
    "DIALING": 1,
    "RINGING": 2,
    "EARLY": 3,
    "ACTIVE": 4,
    "HELD": 5,
    "RING_WAIT": 6,
    "HANGUP": 7,
    "UNHELD": 8,
}

ENDPOINT_SOURCES = {"loopback": "mod_loopback", "sofia": "mod_sofia", "user": "mod_sofia"}
# An originate without a caller ID name leaves it empty (and its headers out).
_DEFAULT_CID_NAME = ""
_DEFAULT_CID_NUMBER = "0000000000"


class ChannelHost(Protocol):
    """What a channel needs from the switch around it."""

    @property
    def factory(self) -> EventFactory: ...

    def fire(self, event: Event) -> None: ...

    def channel_ended(self, channel: ChannelCore[Any]) -> None: ...

    def media_duration(self, path: str) -> float: ...


@dataclass(slots=True)
class ApplicationRun:
    """One application a channel ran: ``uuid`` is its ``Application-UUID``.

    ``response`` is the ``Application-Response`` once it completed;
    ``interrupted`` tells whether a ``uuid_break``, an unpark or a hangup
    ended it early.
    """

    name: str
    data: str
    uuid: str
    response: str | None = None
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class BoundApplication:
    """An application ready to run on one channel: ``run(data)`` returns its response."""

    run: Callable[[str], Awaitable[str]]
    # What EXECUTE_COMPLETE says when a hangup interrupts the application.
    interrupted_response: str = "_none_"


@dataclass(slots=True)
class QueuedExecute:
    name: str
    data: str
    uuid: str
    loops: int = 1
    # The sendmsg as received ("Command: sendmsg <uuid>", then its headers).
    message: tuple[tuple[str, str], ...] = ()


HostT = TypeVar("HostT", bound=ChannelHost, covariant=True)


class ChannelCore(Generic[HostT]):
    """The state every layer of a channel reads and changes (see the module's docstring)."""

    def __init__(
        self,
        host: HostT,
        request: OriginateRequest,
        destination: Destination,
        *,
        session_id: int,
        direction: str = "outbound",
        destination_number: str | None = None,
        loopback_leg: str | None = None,
    ) -> None:
        self._host = host
        self._factory = host.factory
        self.destination = destination
        self.dial_path = request.dial_path
        #: How the originate's dial string parsed (None for legs it did not originate).
        self.dial_string = request.dial_string
        self.uuid = request.variables.get("origination_uuid") or new_uuid()
        self._request = request
        endpoint, _, rest = request.dial_path.partition("/")
        self.endpoint = endpoint
        parts = rest.split("/")
        # "A" (the leg an originate creates) or "B" (the one running the extension)
        # of a loopback pair; None for any other leg.
        self.loopback_leg = loopback_leg
        self.loopback_peer: Self | None = None
        if endpoint == "loopback":
            self.destination_number = parts[0]
            self.context = parts[1] if len(parts) > 1 and parts[1] else "default"
            self.name = f"loopback/{self.destination_number}-{(loopback_leg or 'a').lower()}"
        else:
            self.destination_number = parts[-1].split("@", 1)[0] if rest else request.dial_path
            self.context = "default"
            self.name = request.dial_path
        if destination_number is not None:
            self.destination_number = destination_number
        self.direction = direction
        self.state = "CS_NEW"
        self._state_number = 0
        self.call_state = "DOWN"
        self._answer_state = "ringing"
        self.answered = False
        self.hangup_cause: str | None = None
        self._hit_dialplan = False
        self._parked = False
        self._running: list[ApplicationRun] = []  # innermost last: park nests executes
        self.applications: list[ApplicationRun] = []
        self.breaks: list[bool] = []
        self.dtmf_sent: list[str] = []
        #: The text of every ``say`` the channel ran, as the application read it.
        self.said: list[str] = []
        self._queue: deque[QueuedExecute] = deque()
        self._queue_changed = anyio.Event()
        self._park_scope: anyio.CancelScope | None = None
        self._unparked = anyio.Event()
        self._park_requested = False
        self._session_wakeup = anyio.Event()
        self._break_pending = False
        self._media_scope: anyio.CancelScope | None = None
        self._dtmf: deque[str] = deque()
        self._dtmf_changed = anyio.Event()
        self._apps_changed = anyio.Event()
        self._bridge_partner: Self | None = None
        self._bridging = False
        self._bridge_a_side = False
        self._other_leg: Self | None = None
        self._holders = 0
        self._hung_up = anyio.Event()
        self._reported = anyio.Event()
        self._released = anyio.Event()
        self._released.set()
        self.last_application: str | None = None
        self._last_application_data = ""
        self._caller_name = (
            request.variables.get("origination_caller_id_name")
            or request.caller_id_name
            or _DEFAULT_CID_NAME
        )
        self._caller_number = (
            request.variables.get("origination_caller_id_number")
            or request.caller_id_number
            or _DEFAULT_CID_NUMBER
        )
        self._callee_name = "Outbound Call"
        # mod_loopback's legs show the dial string's last part (the context) as callee.
        self._callee_number = self.context if endpoint == "loopback" else self.destination_number
        self._cid_flipped = False
        now = self._factory.clock.now_us()
        self._created_us = now
        self._answered_us = 0
        self._progress_us = 0
        self._progress_media_us = 0
        self._hangup_us = 0
        # Loopback legs carry raw 16-bit audio between them (L16), SIP legs PCMU.
        codec = "L16" if endpoint == "loopback" else "PCMU"
        self.variables: dict[str, str] = {
            "direction": direction,
            **({"is_outbound": "true"} if direction == "outbound" else {}),
            "session_id": str(session_id),
            "read_codec": codec,
            "read_rate": "8000",
            "write_codec": codec,
            "write_rate": "8000",
            "channel_name": self.name,
            "uuid": self.uuid,
            "call_uuid": self.uuid,
        }
        self._cancel_scope: anyio.CancelScope | None = None
        self._originated = anyio.Event()
        self._answered_event = anyio.Event()
        self._ended = anyio.Event()
        self.originate_error: str | None = None
        self._create_pending = False
        self._digits_dialed = ""
        # A transfer (uuid_bridge's) gives the channel a new caller profile.
        self._profile_index = 1
        self._logical_direction = direction
        self._transfer_source = ""

    # -------------------------------------------------------------------- views

    @property
    def application(self) -> str | None:
        """The application running now (``park``, ...), if any."""
        running = self._running_app
        return running.name if running else None

    @property
    def _running_app(self) -> ApplicationRun | None:
        return self._running[-1] if self._running else None

    @property
    def parked(self) -> bool:
        return self._parked

    @property
    def host(self) -> HostT:
        return self._host

    @property
    def hung_up(self) -> anyio.Event:
        """Set when the channel starts hanging up (``CHANNEL_HANGUP``)."""
        return self._hung_up

    @property
    def reported(self) -> anyio.Event:
        """Set once ``CHANNEL_HANGUP_COMPLETE`` was fired."""
        return self._reported

    @property
    def bridged_to(self) -> str | None:
        """The uuid of the channel this one is bridged to, if any."""
        partner = self._bridge_partner
        return partner.uuid if partner is not None else None

    @property
    def queued(self) -> int:
        """Messages (``sendmsg`` executes) waiting for the channel to run them."""
        return len(self._queue)

    async def wait_for_application(self, name: str) -> ApplicationRun:
        """Wait until an application called ``name`` has started (it may be over
        already: see :attr:`ApplicationRun.response`); returns the latest such run."""
        while True:
            for run in reversed(self.applications):
                if run.name == name:
                    return run
            if self._ended.is_set():
                raise RuntimeError(f"channel {self.uuid} ended without running {name}")
            await self._apps_changed.wait()

    def _notify_apps(self) -> None:
        self._apps_changed.set()
        self._apps_changed = anyio.Event()

    @property
    def created_us(self) -> int:
        """Creation time, microseconds since the epoch."""
        return self._created_us

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_originated(self) -> str | None:
        """Wait until the originate succeeded (``None``) or failed (the cause)."""
        await self._originated.wait()
        return self.originate_error

    async def wait_ended(self) -> None:
        """Wait until ``CHANNEL_DESTROY`` was fired."""
        await self._ended.wait()

    async def wait_parked(self) -> None:
        """Wait until the channel is in park (the ``park`` or ``socket`` application's).

        A test's way to know a call routed to an outbound app has settled, without
        depending on the session seeing ``CHANNEL_PARK``: as on a real switch, that event
        reaches the session only when its ``myevents`` came before the park.
        """
        while not self._parked:
            if self._ended.is_set():
                raise RuntimeError(f"channel {self.uuid} ended without parking")
            await self._apps_changed.wait()
