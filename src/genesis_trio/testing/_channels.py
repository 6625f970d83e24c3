"""Simulated channels: state, headers and the lifecycle events FreeSWITCH fires.

A :class:`FakeChannel` is either the A leg an ``originate`` creates (its far
end scripted by a :class:`~genesis_trio.testing.Destination`) or an incoming
call routed to an outbound socket (:meth:`FakeFreeSWITCH.call_socket`). The
order of events and the headers each carries follow the recorded legs of
``inbound_plain_lifecycle`` and ``outbound_session_plain``.

Two tasks drive a channel inside one task group: the *far end* (ringing,
early media, answer, the other party's hangup) and the *session* (the
applications, run one at a time as FreeSWITCH's session thread runs them).
A parked channel runs the messages queued by ``sendmsg`` (``execute``
nests an application inside the park, as ``switch_ivr_park`` does). A hangup,
from either side, cancels that task group; the teardown events
(``CHANNEL_HANGUP_COMPLETE``, ``CHANNEL_DESTROY``, ...) follow, and
``CHANNEL_DESTROY`` waits until an outbound socket holding the channel is gone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from ..protocol import Event, fsparse
from ._apps import APPLICATIONS
from ._causes import cause_code, parse_cause
from ._destinations import Destination
from ._errors import MediaBroken
from ._event_factory import SITES, EventFactory, local_stamp, new_uuid

__all__ = [
    "CALL_STATE_NUMBERS",
    "CHANNEL_STATE_NUMBERS",
    "ApplicationRun",
    "ChannelHost",
    "FakeChannel",
    "OriginateRequest",
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

_SOURCES = {"loopback": "mod_loopback", "sofia": "mod_sofia", "user": "mod_sofia"}
# An originate without a caller ID name leaves it empty (and its headers out).
_DEFAULT_CID_NAME = ""
_DEFAULT_CID_NUMBER = "0000000000"


class ChannelHost(Protocol):
    """What a channel needs from the switch around it."""

    @property
    def factory(self) -> EventFactory: ...

    def fire(self, event: Event) -> None: ...

    def channel_ended(self, channel: FakeChannel) -> None: ...

    def media_duration(self, path: str) -> float: ...

    async def run_socket_application(self, channel: FakeChannel, data: str) -> str: ...


@dataclass(slots=True)
class OriginateRequest:
    """A parsed ``originate``: ``{vars}dial_path &app(data)`` and the optional fields."""

    dial_path: str
    variables: dict[str, str] = field(default_factory=dict)
    application: str = "park"
    application_data: str = ""
    extension: str | None = None
    timeout: float = 60.0
    caller_id_name: str | None = None
    caller_id_number: str | None = None
    #: How the whole dial string parsed (every leg, for multi-leg dial strings).
    dial_string: fsparse.OriginateLegs | None = None


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


@dataclass(slots=True)
class _QueuedExecute:
    name: str
    data: str
    uuid: str
    loops: int = 1
    # The sendmsg as received ("Command: sendmsg <uuid>", then its headers).
    message: tuple[tuple[str, str], ...] = ()


class FakeChannel:
    """One simulated channel.

    Read-only to users, except :attr:`variables` (what ``uuid_setvar`` changes).
    ``state`` is the ``Channel-State`` (``CS_*``), ``call_state`` the
    ``Channel-Call-State``; ``hangup_cause`` is set once the channel hangs up.
    :attr:`applications` lists what ran, :attr:`breaks` each ``uuid_break``
    (True for ``all``), :attr:`dtmf_sent` the digits sent to the far end.
    """

    def __init__(
        self,
        host: ChannelHost,
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
        self.loopback_peer: FakeChannel | None = None
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
        self._queue: deque[_QueuedExecute] = deque()
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
        self._bridge_partner: FakeChannel | None = None
        self._bridging = False
        self._bridge_a_side = False
        self._other_leg: FakeChannel | None = None
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

    # ------------------------------------------------------------------ views

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
    def host(self) -> ChannelHost:
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

    def channel_data(
        self, *, variables: bool = True, hangup_cause: bool = True
    ) -> list[tuple[str, str]]:
        """The channel's header block (switch_channel_event_set_data)."""
        headers = [
            ("Channel-State", self.state),
            ("Channel-Call-State", self.call_state),
            ("Channel-State-Number", str(self._state_number)),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self._hit_dialplan else "false"),
            ("Channel-Call-UUID", self.uuid),
            ("Answer-State", self._answer_state),
        ]
        if hangup_cause and self.hangup_cause is not None:
            headers.append(("Hangup-Cause", self.hangup_cause))
        headers += [
            ("Channel-Read-Codec-Name", self.variables.get("read_codec", "PCMU")),
            ("Channel-Read-Codec-Rate", self.variables.get("read_rate", "8000")),
            ("Channel-Read-Codec-Bit-Rate", self._bit_rate()),
            ("Channel-Write-Codec-Name", self.variables.get("write_codec", "PCMU")),
            ("Channel-Write-Codec-Rate", self.variables.get("write_rate", "8000")),
            ("Channel-Write-Codec-Bit-Rate", self._bit_rate()),
        ]
        other = self._other_leg
        if other is not None:
            role = "originatee" if self._bridge_a_side else "originator"
            headers.append(("Other-Type", role))
            headers += [
                pair
                for pair in other.caller_profile("Other-Leg-")
                if pair[0] not in ("Other-Leg-Profile-Index", "Other-Leg-Transfer-Source")
            ]
        headers += self.caller_profile()
        if variables:
            headers += [("variable_" + name, value) for name, value in self.variables.items()]
        return headers

    def _bit_rate(self) -> str:
        return "128000" if self.variables.get("read_codec") == "L16" else "64000"

    def show_fields(self, hostname: str) -> dict[str, str]:
        """This channel's row of ``show channels`` (the columns that have a value)."""
        running = self._running_app
        return {
            "uuid": self.uuid,
            "direction": self.direction,
            "created": local_stamp(self._created_us),
            "created_epoch": str(self._created_us // 1_000_000),
            "name": self.name,
            "state": self.state,
            "cid_name": self._caller_name,
            "cid_num": self._caller_number,
            "dest": self.destination_number,
            "application": running.name if running else "",
            "application_data": running.data if running else "",
            "dialplan": "XML",
            "context": self.context,
            "read_codec": self.variables.get("read_codec", "PCMU"),
            "read_rate": self.variables.get("read_rate", "8000"),
            "read_bit_rate": "64000",
            "write_codec": self.variables.get("write_codec", "PCMU"),
            "write_rate": self.variables.get("write_rate", "8000"),
            "write_bit_rate": "64000",
            "hostname": hostname,
            "callstate": self.call_state,
            "callee_name": self._callee_name,
            "callee_num": self._callee_number,
            "call_uuid": self.uuid,
            "initial_cid_name": self._caller_name,
            "initial_cid_num": self._caller_number,
            "initial_dest": self.destination_number,
            "initial_dialplan": "XML",
            "initial_context": self.context,
        }

    def caller_profile(self, prefix: str = "Caller-") -> list[tuple[str, str]]:
        """The caller profile block, with ``Caller-`` (or another prefix) on every name.

        As switch_caller_profile_event_set_data, empty fields (a caller ID name
        nobody gave) are left out."""
        return [
            (prefix + name.removeprefix("Caller-"), value)
            for name, value in self._profile()
            if value
        ]

    def _profile(self) -> list[tuple[str, str]]:
        caller = (self._caller_name, self._caller_number)
        callee = (self._callee_name, self._callee_number)
        # Once the originate completes, the profile shows the callee as the caller.
        (shown_name, shown_number), (other_name, other_number) = (
            (callee, caller) if self._cid_flipped else (caller, callee)
        )
        return [
            ("Caller-Direction", self.direction),
            ("Caller-Logical-Direction", self._logical_direction),
            ("Caller-Dialplan", "xml"),
            ("Caller-Caller-ID-Name", shown_name),
            ("Caller-Caller-ID-Number", shown_number),
            ("Caller-Orig-Caller-ID-Name", self._caller_name),
            ("Caller-Orig-Caller-ID-Number", self._caller_number),
            ("Caller-Callee-ID-Name", other_name),
            ("Caller-Callee-ID-Number", other_number),
            ("Caller-ANI", self._caller_number),
            ("Caller-Destination-Number", self.destination_number),
            ("Caller-Unique-ID", self.uuid),
            ("Caller-Source", _SOURCES.get(self.endpoint, f"mod_{self.endpoint}")),
            ("Caller-Context", self.context),
            ("Caller-Channel-Name", self.name),
            ("Caller-Transfer-Source", self._transfer_source),
            ("Caller-Profile-Index", str(self._profile_index)),
            ("Caller-Profile-Created-Time", str(self._created_us)),
            ("Caller-Channel-Created-Time", str(self._created_us)),
            ("Caller-Channel-Answered-Time", str(self._answered_us)),
            ("Caller-Channel-Progress-Time", str(self._progress_us)),
            ("Caller-Channel-Progress-Media-Time", str(self._progress_media_us)),
            ("Caller-Channel-Hangup-Time", str(self._hangup_us)),
            ("Caller-Channel-Transfer-Time", "0"),
            ("Caller-Channel-Resurrect-Time", "0"),
            ("Caller-Channel-Bridged-Time", "0"),
            ("Caller-Channel-Last-Hold", "0"),
            ("Caller-Channel-Hold-Accum", "0"),
            ("Caller-Screen-Bit", "true"),
            ("Caller-Privacy-Hide-Name", "false"),
            ("Caller-Privacy-Hide-Number", "false"),
        ]

    # -------------------------------------------------------------- firing

    def emit(
        self,
        name: str,
        *,
        before: Iterable[tuple[str, str]] = (),
        after: Iterable[tuple[str, str]] = (),
        variables: bool = True,
        hangup_cause: bool = True,
        site: str | None = None,
    ) -> None:
        """Fire ``name`` with ``before`` + channel data (+ variables) + ``after``
        (``site``: a key of ``SITES`` other than the event's name)."""
        data = self.channel_data(variables=variables, hangup_cause=hangup_cause)
        calling = SITES[site] if site is not None else None
        self._host.fire(self._factory.event(name, [*before, *data, *after], site=calling))

    def _set_running_state(self, state: str) -> None:
        self._state_number = CHANNEL_STATE_NUMBERS[state]
        self.state = state
        self.emit("CHANNEL_STATE", variables=False)

    def _set_call_state(self, call_state: str) -> None:
        original = self.call_state
        self.call_state = call_state
        self.emit(
            "CHANNEL_CALLSTATE",
            before=[
                ("Original-Channel-Call-State", original),
                ("Channel-Call-State-Number", str(CALL_STATE_NUMBERS[call_state])),
            ],
            variables=False,
        )

    # ------------------------------------------------------------ creation

    def start(self) -> None:
        """Fire the creation events (synchronously, as the originate creates the leg)."""
        request = self._request
        self.state = "CS_NONE"
        renamed = "origination_uuid" in request.variables
        old_uuid = new_uuid() if renamed else self.uuid
        if self.loopback_leg is not None:
            # mod_loopback sets the codecs while the leg still has its first name and uuid.
            self._fire_codec_events(old_uuid, f"{request.dial_path}-a")
        self._state_number = CHANNEL_STATE_NUMBERS["CS_INIT"]
        if renamed:
            self.emit("CHANNEL_UUID", before=[("Old-Unique-ID", old_uuid)])
        for name, value in request.variables.items():
            self.variables[name] = value
        # mod_loopback's legs always offer early media to the originate.
        early = self.destination.early_media or self.loopback_leg is not None
        self.variables["originate_early_media"] = "true" if early else "false"
        self.variables["originate_endpoint"] = self.endpoint
        self._set_loopback_variables()
        if self.endpoint in ("sofia", "user"):
            # A SIP leg carries its Call-ID; a loopback leg (as recorded) has none.
            self.variables["sip_call_id"] = f"{new_uuid()}@{self._factory.identity.ipv4}"
        self.emit("CHANNEL_OUTGOING", variables=False)
        self._set_running_state("CS_INIT")
        self._state_number = CHANNEL_STATE_NUMBERS["CS_ROUTING"]
        if self.destination.create_late:
            self._create_pending = True
        else:
            self._fire_create()
        self._set_running_state("CS_ROUTING")
        self._set_running_state("CS_CONSUME_MEDIA")

    def _fire_codec_events(self, uuid: str, name: str) -> None:
        """The two CODEC events of a new loopback leg (read codec, then write codec)."""
        codec, rate, bits = self.variables["read_codec"], "8000", self._bit_rate()
        channel = [
            ("Channel-State", "CS_NONE"),
            ("Channel-Call-State", "DOWN"),
            ("Channel-State-Number", "0"),
            ("Channel-Name", name),
            ("Unique-ID", uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self.loopback_leg == "B" else "false"),
            ("Channel-Call-UUID", uuid),
            ("Answer-State", "ringing"),
        ]
        read = [
            ("Channel-Read-Codec-Name", codec),
            ("Channel-Read-Codec-Rate", rate),
            ("Channel-Read-Codec-Bit-Rate", bits),
        ]
        write = [
            ("Channel-Write-Codec-Name", codec),
            ("Channel-Write-Codec-Rate", rate),
            ("Channel-Write-Codec-Bit-Rate", bits),
        ]
        factory, fire = self._factory, self._host.fire
        fire(
            factory.event(
                "CODEC",
                [
                    *channel,
                    *read,
                    ("channel-read-codec-name", codec),
                    ("channel-read-codec-rate", rate),
                    ("channel-read-codec-bit-rate", bits),
                ],
                site=SITES["CODEC_READ"],
            )
        )
        fire(
            factory.event(
                "CODEC",
                [
                    *channel,
                    *read,
                    *write,
                    ("Channel-Write-Codec-Name", codec),
                    ("Channel-Write-Codec-Rate", rate),
                    ("Channel-Write-codec-bit-rate", bits),
                ],
                site=SITES["CODEC_WRITE"],
            )
        )

    def _fire_create(self) -> None:
        self._create_pending = False
        self.emit("CHANNEL_CREATE")
        self.emit("CHANNEL_ORIGINATE")

    def _flush_late_create(self) -> None:
        if self._create_pending:
            self._fire_create()

    def link_loopback(self, peer: FakeChannel) -> None:
        """Pair this leg with the other leg of its loopback call (before it starts)."""
        self.loopback_peer = peer

    def _set_loopback_variables(self) -> None:
        if self.loopback_peer is not None:
            self.variables["other_loopback_leg_uuid"] = self.loopback_peer.uuid
            self.variables["loopback_leg"] = self.loopback_leg or "A"

    def start_incoming(self) -> None:
        """Fire the events of a call arriving from the outside, routed to the dialplan."""
        for name, value in self._request.variables.items():
            self.variables[name] = value
        self._set_loopback_variables()
        if self.loopback_leg is None:
            self.variables["sip_call_id"] = f"{new_uuid()}@{self._factory.identity.ipv4}"
        else:
            self._fire_codec_events(self.uuid, self.name)
        self._hit_dialplan = True
        self._set_running_state("CS_INIT")
        # The state machine is already routing when CREATE and the ring are fired.
        self._state_number = CHANNEL_STATE_NUMBERS["CS_ROUTING"]
        self.emit("CHANNEL_CREATE")
        self.state = "CS_ROUTING"
        self._set_call_state("RINGING")
        self._set_running_state("CS_ROUTING")
        self._originated.set()

    # --------------------------------------------------- far-end transitions

    def _ring(self) -> None:
        self._progress_us = self._factory.clock.now_us()
        self.emit("CHANNEL_PROGRESS")
        if self.call_state != "RINGING":
            self._set_call_state("RINGING")

    def _a_leg_peer(self) -> FakeChannel | None:
        """The originated leg, when this is the -b leg of a loopback pair."""
        peer = self.loopback_peer
        return peer if self.loopback_leg == "B" and peer is not None else None

    def mark_ring_ready(self) -> None:
        if self._progress_us or self.answered or self.hangup_cause:
            return
        # mod_loopback passes the ring to the originated leg before this leg's event.
        a_leg = self._a_leg_peer()
        if a_leg is not None:
            a_leg.mark_ring_ready()
        self._ring()

    def mark_pre_answered(self) -> None:
        if self.answered or self._answer_state == "early" or self.hangup_cause:
            return
        a_leg = self._a_leg_peer()
        if a_leg is not None:
            a_leg.mark_pre_answered()
        self._progress_media_us = self._factory.clock.now_us()
        if not self._progress_us:
            self._progress_us = self._progress_media_us
        self._answer_state = "early"
        self.variables["endpoint_disposition"] = "EARLY MEDIA"
        self.emit("CHANNEL_PROGRESS_MEDIA")
        self._flush_late_create()
        self._set_call_state("EARLY")
        self._originate_succeeded()

    def mark_answered(self) -> None:
        if self.answered or self.hangup_cause:
            return
        a_leg = self._a_leg_peer()
        if a_leg is not None:
            a_leg.mark_answered()
        self.answered = True
        self._answered_us = self._factory.clock.now_us()
        self._answer_state = "answered"
        self.emit("CHANNEL_ANSWER")
        self.variables["endpoint_disposition"] = "ANSWER"
        self._flush_late_create()
        self._set_call_state("ACTIVE")
        self._answered_event.set()
        self._originate_succeeded()

    def _originate_succeeded(self) -> None:
        if self._originated.is_set():
            return
        # The originate completes: the caller ID flips to the callee (CALL_UPDATE),
        # and originate_function moves the leg to CS_EXECUTE before it replies.
        self._cid_flipped = True
        self._hit_dialplan = True
        if self.loopback_leg is not None:
            if self._caller_name:
                self.variables["pre_transfer_caller_id_name"] = self._caller_name
            self.variables["pre_transfer_caller_id_number"] = self._caller_number
        self.variables["channel_cid_flipped"] = "yes"
        self.emit("CALL_UPDATE", before=[("Direction", "RECV")])
        self._set_running_state("CS_EXECUTE")
        self._originated.set()

    # --------------------------------------------------------------- hangup

    def request_hangup(self, cause: str = "NORMAL_CLEARING") -> bool:
        """Hang up with ``cause``; ``False`` if the channel is already hanging up.

        ``CHANNEL_HANGUP`` fires at once, as switch_channel_hangup fires it in
        the caller's thread; the rest of the teardown follows in the channel's task.
        A bridged partner sees its bridge end and hangs up too, as recorded.
        """
        if self.hangup_cause is not None:
            return False
        self._flush_late_create()
        self.hangup_cause = parse_cause(cause)
        self._hangup_us = self._factory.clock.now_us()
        self._state_number = CHANNEL_STATE_NUMBERS["CS_HANGUP"]
        self._answer_state = "hangup"
        self.emit("CHANNEL_HANGUP")
        self._hung_up.set()
        if not self._originated.is_set():
            self.originate_error = self.hangup_cause
            self._originated.set()
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        partner = self._bridge_partner
        if partner is not None:
            self._end_bridge()
            partner.request_hangup("NORMAL_CLEARING")
        if self.loopback_peer is not None:
            # Either leg of a loopback pair takes the other down with its own cause.
            self.loopback_peer.request_hangup(self.hangup_cause)
        self._wake_waiters()
        return True

    def _wake_waiters(self) -> None:
        for event in (self._queue_changed, self._dtmf_changed, self._session_wakeup):
            event.set()
        self._notify_apps()

    # ----------------------------------------------------------- the tasks

    async def run(self) -> None:
        """The channel's life, from the first ring to ``CHANNEL_DESTROY``."""
        try:
            if self.hangup_cause is None:
                async with anyio.create_task_group() as task_group:
                    self._cancel_scope = task_group.cancel_scope
                    task_group.start_soon(self._far_end)
                    task_group.start_soon(self._session)
                    if self.destination.dtmf:
                        task_group.start_soon(self._press_scripted_dtmf)
            self._cancel_scope = None
            self._teardown()
            if not self._released.is_set():
                # An outbound socket holds the session: DESTROY fires once it let go.
                await self._released.wait()
            self._destroy()
        finally:
            self._ended.set()
            self._notify_apps()
            self._host.channel_ended(self)

    async def _far_end(self) -> None:
        destination = self.destination
        if self.direction == "inbound":
            # The caller already called; all it can still do is hang up.
            if destination.hangup_after is not None:
                await anyio.sleep(destination.hangup_after)
                self.request_hangup("NORMAL_CLEARING")
            return
        timeout = self._request.timeout
        if self.loopback_leg == "A":
            # The -b leg answers (or not) for this one; only the originate timeout is ours.
            with anyio.move_on_after(timeout):
                await self._originated.wait()
            if not self._originated.is_set():
                self.request_hangup("NO_ANSWER")
            return
        delay = destination.answer_after
        if destination.reject_cause is not None:
            if delay:
                self._ring()
                await anyio.sleep(delay)
            self.request_hangup(destination.reject_cause)
            return
        if delay != 0 or destination.early_media:
            self._ring()
        if destination.early_media:
            self.mark_pre_answered()
        if delay is None or (delay > timeout and not destination.early_media):
            if destination.early_media:
                await anyio.sleep_forever()
            await anyio.sleep(timeout)
            self.request_hangup("NO_ANSWER")
            return
        await anyio.sleep(delay)
        self.mark_answered()
        if destination.hangup_after is not None:
            await anyio.sleep(destination.hangup_after)
            self.request_hangup("NORMAL_CLEARING")

    async def _press_scripted_dtmf(self) -> None:
        await self._answered_event.wait()
        await anyio.sleep(self.destination.dtmf_after)
        self.receive_dtmf(self.destination.dtmf)

    async def _session(self) -> None:
        await self._originated.wait()
        if self.hangup_cause is not None:
            return
        extension = self.destination.applications if self.loopback_leg == "B" else None
        if extension is not None and not extension:
            # The dialplan found no extension: the -b leg ends in CS_ROUTING.
            self.request_hangup("NO_ROUTE_DESTINATION")
            return
        if self.direction == "inbound":
            self._set_running_state("CS_EXECUTE")
        request = self._request
        if extension is None:
            await self.execute(request.application, request.application_data)
        else:
            for name, data in extension:
                if self.hangup_cause is not None:
                    return
                await self.execute(name, data)
        while self.hangup_cause is None:
            # A fresh event before looking: a wake-up can only come after the look.
            wakeup = self._session_wakeup = anyio.Event()
            if self._park_requested:
                self._park_requested = False
                await self.execute("park")
            elif self._bridge_partner is not None or self._bridging:
                await wakeup.wait()
            else:
                break
        # The extension ran out of applications: the session hangs up.
        self.request_hangup("NORMAL_CLEARING")

    async def execute(self, name: str, data: str = "", *, uuid: str | None = None) -> str:
        """Run one application with its EXECUTE / EXECUTE_COMPLETE events.

        ``uuid`` is its ``Application-UUID`` (a ``sendmsg``'s ``Event-UUID``).
        """
        app = APPLICATIONS.get(name)
        if app is None:
            # An application the switch does not have ends the call.
            self.request_hangup("DESTINATION_OUT_OF_ORDER")
            await anyio.sleep_forever()
            return "_none_"
        running = ApplicationRun(name, data, uuid or new_uuid())
        self._running.append(running)
        self.applications.append(running)
        self.last_application = name
        self._last_application_data = data
        self.variables["current_application"] = name
        # Each application starts with no response, and no data unless it has some.
        self.variables.pop("current_application_response", None)
        if data:
            self.variables["current_application_data"] = data
        else:
            self.variables.pop("current_application_data", None)
        self.emit("CHANNEL_EXECUTE", after=self._application_headers(running))
        # As switch_core_session_exec does right after CHANNEL_EXECUTE: a break
        # that found nothing running never reaches the next application.
        self._break_pending = False
        self._notify_apps()
        try:
            response = await app.run(self, data)
        except anyio.get_cancelled_exc_class():
            if self.hangup_cause is None and running in self._running:
                # Unwound by an unpark (a bridge), not a hangup: report it here.
                self._running.remove(running)
                running.interrupted = True
                self._complete(running, app.interrupted_response)
            raise
        if running in self._running:
            self._running.remove(running)
        self._complete(running, response)
        return response

    # ------------------------------------------------------------ parking

    def enter_park(self) -> None:
        self._parked = True
        self.emit("CHANNEL_PARK")
        self._notify_apps()

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

    async def park(self) -> str:
        """The ``park`` application: run queued messages until the channel leaves park.

        A channel already parked cannot park again (switch_ivr_park refuses a
        controlled channel): the nested ``park`` returns at once.
        """
        if self._parked:
            return "_none_"
        self.enter_park()
        self._unparked = anyio.Event()
        with anyio.CancelScope() as scope:
            self._park_scope = scope
            try:
                await self._serve_queue()
            finally:
                self._park_scope = None
        self._parked = False
        self.emit("CHANNEL_UNPARK")
        self._unparked.set()
        return "_none_"

    async def _serve_queue(self) -> None:
        while True:
            while not self._queue:
                self._queue_changed = anyio.Event()
                await self._queue_changed.wait()
            message = self._queue.popleft()
            loops = max(1, message.loops)
            for loop in range(loops):
                self.variables["current_loop"] = str(loop + 1)
                self.variables["total_loops"] = str(loops)
                await self.execute(message.name, message.data, uuid=message.uuid)
            self.variables.pop("current_loop", None)
            self.variables.pop("total_loops", None)
            if message.message:
                # switch_ivr_parse_next_event reports the message it just ran.
                self._host.fire(
                    Event(
                        [
                            *message.message,
                            *self._factory.standard_headers(
                                "PRIVATE_COMMAND", SITES["PRIVATE_COMMAND"]
                            ),
                            *self.channel_data(variables=False),
                        ]
                    )
                )

    def queue_execute(
        self,
        name: str,
        data: str,
        uuid: str,
        *,
        loops: int = 1,
        message: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A ``sendmsg`` ``execute``: the channel runs it when it gets to its queue."""
        self._queue.append(_QueuedExecute(name, data, uuid, loops, message))
        self._queue_changed.set()

    def unpark(self) -> None:
        """End the park (and what runs inside it) now; its events follow in the session."""
        if self._park_scope is not None:
            self._park_scope.cancel()

    async def leave_park(self) -> None:
        """End the park, as a transfer to a bridge does, and wait until it ended."""
        if self._park_scope is None:
            return
        self.unpark()
        await self._unparked.wait()

    def request_park(self) -> None:
        """``uuid_park``: park now, or once the current application returns."""
        if self._parked:
            return
        partner = self._bridge_partner
        if partner is not None:
            self._end_bridge()
            partner.request_hangup("NORMAL_CLEARING")
        self._park_requested = True
        self._session_wakeup.set()

    # ------------------------------------------------------------- media

    def request_break(self, flush: bool = False) -> None:
        """``uuid_break``: stop the media application running now.

        As in FreeSWITCH the break is a flag: set while an application runs
        but between its media waits, it stops that application's next one;
        every application clears it as it starts, so a break that finds
        nothing running is lost (it never cuts the next prompt). ``flush``
        (``all``) also drops the queued messages.
        """
        self.breaks.append(flush)
        if flush:
            self._queue.clear()
        scope = self._media_scope
        if scope is not None:
            scope.cancel()
        else:
            self._break_pending = True

    async def play_media(self, seconds: float | None, *, until_dtmf: bool = False) -> str:
        """Spend ``seconds`` (None: until stopped) playing: ``"played"``, ``"broken"``
        (``uuid_break``) or, with ``until_dtmf``, ``"digit"`` when the caller pressed one."""
        if self.consume_break():
            return "broken"
        if until_dtmf and self._dtmf:
            return "digit"
        with anyio.CancelScope() as scope:
            self._media_scope = scope
            try:
                if until_dtmf:
                    with anyio.move_on_after(seconds):
                        await self._next_dtmf_arrival()
                        return "digit"
                elif seconds is None:
                    await anyio.sleep_forever()
                else:
                    await anyio.sleep(seconds)
            finally:
                self._media_scope = None
        if scope.cancel_called:
            self._note_broken()
            return "broken"
        return "played"

    def consume_break(self) -> bool:
        if self._break_pending:
            self._break_pending = False
            self._note_broken()
            return True
        return False

    def _note_broken(self) -> None:
        if self._running:
            self._running[-1].interrupted = True

    # --------------------------------------------------------------- DTMF

    def receive_dtmf(self, digits: str, *, duration_ms: int = 250, source: str = "RTP") -> None:
        """The caller pressed ``digits``: a DTMF event each, and the digits are buffered."""
        for digit in digits:
            self.emit(
                "DTMF",
                after=[
                    ("DTMF-Digit", digit),
                    ("DTMF-Duration", str(duration_ms * 8)),
                    ("DTMF-Source", source),
                ],
                variables=False,
            )
            self._digits_dialed += digit
            self._dtmf.append(digit)
        self._dtmf_changed.set()

    def send_dtmf(self, digits: str) -> None:
        """``uuid_send_dtmf``: the digits go to the far end. The other leg of a loopback
        pair receives them (DTMF events there, source UNKNOWN)."""
        self.dtmf_sent.append(digits)
        # The sending leg remembers the duration it sent (1500 samples, as the test switch).
        self.variables["last_dtmf_duration"] = "1500"
        peer = self.loopback_peer
        if peer is not None and peer.hangup_cause is None:
            peer.receive_dtmf(
                "".join(d for d in digits if d in "0123456789*#ABCDabcd"), source="UNKNOWN"
            )

    def lookup_variable(self, name: str) -> str | None:
        """switch_channel_get_variable: a variable, else a caller profile field."""
        value = self.variables.get(name)
        if value is not None:
            return value
        caller_name, caller_number = self._caller_name, self._caller_number
        fields = {
            "dialplan": "XML",
            "caller_id_name": caller_name,
            "caller_id_number": caller_number,
            "ani": caller_number,
            "destination_number": self.destination_number,
            "uuid": self.uuid,
            "source": _SOURCES.get(self.endpoint, f"mod_{self.endpoint}"),
            "context": self.context,
            "chan_name": self.name,
        }
        return fields.get(name) or None

    async def _next_dtmf_arrival(self) -> None:
        while not self._dtmf:
            self._dtmf_changed = anyio.Event()
            await self._dtmf_changed.wait()

    async def next_dtmf(self, wait: float) -> str | None:
        """The next buffered digit, waiting up to ``wait`` seconds for one.

        Raises :class:`MediaBroken` if a ``uuid_break`` arrives meanwhile.
        """
        if self.consume_break():
            raise MediaBroken
        with anyio.CancelScope() as scope:
            self._media_scope = scope
            try:
                with anyio.move_on_after(wait):
                    await self._next_dtmf_arrival()
            finally:
                self._media_scope = None
        if scope.cancel_called:
            self._note_broken()
            raise MediaBroken
        return self._dtmf.popleft() if self._dtmf else None

    # ------------------------------------------------------------- bridging

    async def bridge_with(self, other: FakeChannel) -> None:
        """``uuid_bridge self other``: both leave park, then this (A) leg fires CHANNEL_BRIDGE."""
        legs = (self, other)
        for leg, peer, a_side in ((self, other, True), (other, self, False)):
            leg._bridging = True
            leg._transfer(peer, a_side)
        try:
            await self.leave_park()
            await other.leave_park()
        finally:
            for leg in legs:
                leg._bridging = False
                leg._session_wakeup.set()
        if self.hangup_cause is not None or other.hangup_cause is not None:
            return
        for leg, peer, a_side in ((self, other, True), (other, self, False)):
            # The transfer's states: hibernate, reset, then soft-execute the bridge.
            leg._set_running_state("CS_HIBERNATE")
            leg._set_running_state("CS_RESET")
            leg._other_leg = peer
            leg._bridge_a_side = a_side
            leg._set_running_state("CS_SOFT_EXECUTE")
            leg.variables["bridge_uuid"] = peer.uuid
            leg.variables["bridge_channel"] = peer.name
            leg.emit(
                "CHANNEL_EXECUTE",
                after=[("Application", "uuid_bridge"), ("Application-Data", peer.uuid)],
                site="UUID_BRIDGE_EXECUTE",
            )
        self._bridge_partner = other
        other._bridge_partner = self
        stamp = local_stamp(self._factory.clock.now_us())
        for leg, peer in legs, (other, self):
            leg.variables["last_bridge_to"] = peer.uuid
            leg.variables["signal_bond"] = peer.uuid
            leg.variables["bridge_stamp"] = stamp
        # The B side runs the media loop; the A side bridges from its soft-execute.
        other._set_running_state("CS_CONSUME_MEDIA")
        other._set_running_state("CS_EXCHANGE_MEDIA")
        self.emit(
            "CHANNEL_BRIDGE",
            before=[("Bridge-A-Unique-ID", self.uuid), ("Bridge-B-Unique-ID", other.uuid)],
            site="BRIDGE",
        )

    def _transfer(self, peer: FakeChannel, a_side: bool) -> None:
        """uuid_bridge first transfers the leg: a new caller profile (its index, the
        transfer source), the B side's dialplan hit forgotten, the original caller ID kept;
        the park notices it in CS_HIBERNATE."""
        shown_name, shown_number = self._shown_caller_id()
        self.variables["original_destination_number"] = self.destination_number
        if shown_name:
            self.variables["original_caller_id_name"] = shown_name
        self.variables["original_caller_id_number"] = shown_number
        epoch = self._factory.clock.now_us() // 1_000_000
        source = f"{epoch}:{self.uuid}:uuid_br:{peer.uuid}"
        self._transfer_source = source
        self.variables["transfer_source"] = source
        self.variables["transfer_history"] = source
        self._profile_index += 1
        # The A side's new profile is an inbound one; each side knows the other from now on.
        if a_side:
            self._logical_direction = "inbound"
        self._other_leg = peer
        self._bridge_a_side = a_side
        if not a_side:
            self._hit_dialplan = False
        self._state_number = CHANNEL_STATE_NUMBERS["CS_HIBERNATE"]

    def _shown_caller_id(self) -> tuple[str, str]:
        """The caller ID the channel shows (the callee's once the originate flipped it)."""
        if self._cid_flipped:
            return self._callee_name, self._callee_number
        return self._caller_name, self._caller_number

    def _end_bridge(self) -> None:
        partner = self._bridge_partner
        if partner is None:
            return
        a_leg, b_leg = (self, partner) if self._bridge_a_side else (partner, self)
        self._bridge_partner = None
        partner._bridge_partner = None
        if b_leg.hangup_cause is not None:
            a_leg.variables["bridge_hangup_cause"] = b_leg.hangup_cause
            a_leg.variables["last_bridge_hangup_cause"] = b_leg.hangup_cause
        # What each side last sent the other as callee ID (a number stands in for a name).
        a_leg.variables["last_sent_callee_id_name"] = b_leg._caller_name or b_leg._caller_number
        a_leg.variables["last_sent_callee_id_number"] = b_leg._caller_number
        name, number = a_leg._shown_caller_id()
        b_leg.variables["last_sent_callee_id_name"] = name or number
        b_leg.variables["last_sent_callee_id_number"] = number
        b_leg.variables["last_bridge_role"] = "originatee"
        a_leg.emit(
            "CHANNEL_UNBRIDGE",
            before=[("Bridge-A-Unique-ID", a_leg.uuid), ("Bridge-B-Unique-ID", b_leg.uuid)],
            site="BRIDGE",
        )
        if a_leg.hangup_cause is None:
            # The A side's bridge returns: back to executing (before its own hangup).
            a_leg._set_running_state("CS_EXECUTE")
        for leg in (self, partner):
            leg._session_wakeup.set()

    # ------------------------------------------------------------ holders

    def hold(self) -> None:
        """An outbound socket controls the session: CHANNEL_DESTROY waits for it."""
        self._holders += 1
        self._released = anyio.Event()

    def release(self) -> None:
        self._holders = max(0, self._holders - 1)
        if not self._holders:
            self._released.set()

    # ------------------------------------------------------------ events

    def _application_headers(
        self, running: ApplicationRun, response: str | None = None
    ) -> list[tuple[str, str]]:
        headers = [("Application", running.name)]
        if running.data:
            headers.append(("Application-Data", running.data))
        if response is not None:
            headers.append(("Application-Response", response))
        headers.append(("Application-UUID", running.uuid))
        return headers

    def _complete(self, running: ApplicationRun, response: str) -> None:
        if response != "_none_":
            # Only applications that answer something set it (playback: FILE PLAYED).
            self.variables["current_application_response"] = response
        # EXECUTE_COMPLETE reports the variable: a park reports what a playback nested
        # in it answered.
        response = self.variables.get("current_application_response", "_none_")
        running.response = response
        self.emit("CHANNEL_EXECUTE_COMPLETE", after=self._application_headers(running, response))
        self._notify_apps()

    def _teardown(self) -> None:
        cause = self.hangup_cause or "NORMAL_CLEARING"
        # The innermost application returns first; then the park loop notices.
        while len(self._running) > 1:
            inner = self._running.pop()
            inner.interrupted = True
            app = APPLICATIONS.get(inner.name)
            self._complete(inner, app.interrupted_response if app else "_none_")
        if self._parked:
            self._parked = False
            self.emit("CHANNEL_UNPARK")
        running = self._running_app
        if running is not None:
            self._running.clear()
            app = APPLICATIONS.get(running.name)
            self._complete(running, app.interrupted_response if app else "_none_")
        self._set_running_state("CS_HANGUP")
        self._set_call_state("HANGUP")
        self._set_running_state("CS_REPORTING")
        self._record_cdr_variables(cause)
        if self.loopback_leg is not None:
            self.variables["is_loopback"] = "1"
        # As recorded: HANGUP_COMPLETE carries the cause twice, at the top.
        self.emit(
            "CHANNEL_HANGUP_COMPLETE",
            before=[("Hangup-Cause", cause), ("Hangup-Cause", cause)],
            hangup_cause=False,
        )
        self._reported.set()
        self._notify_apps()

    def _destroy(self) -> None:
        self._state_number = CHANNEL_STATE_NUMBERS["CS_DESTROY"]
        self.emit("CHANNEL_DESTROY")
        self._set_running_state("CS_DESTROY")

    def _record_cdr_variables(self, cause: str) -> None:
        end = self._hangup_us or self._factory.clock.now_us()
        created = self._created_us
        variables = self.variables
        variables["hangup_cause"] = cause
        variables["hangup_cause_q850"] = str(cause_code(cause))
        variables["digits_dialed"] = self._digits_dialed or "none"
        variables["start_stamp"] = local_stamp(created)
        variables["profile_start_stamp"] = local_stamp(created)
        if self._answered_us:
            variables["answer_stamp"] = local_stamp(self._answered_us)
        if self._progress_us:
            variables["progress_stamp"] = local_stamp(self._progress_us)
        if self._progress_media_us:
            variables["progress_media_stamp"] = local_stamp(self._progress_media_us)
        variables["end_stamp"] = local_stamp(end)
        for name, value in (
            ("start", created),
            ("profile_start", created),
            ("answer", self._answered_us),
            ("bridge", 0),
            ("last_hold", 0),
        ):
            variables[f"{name}_epoch"] = str(value // 1_000_000)
            variables[f"{name}_uepoch"] = str(value)
        variables["hold_accum_seconds"] = "0"
        variables["hold_accum_usec"] = "0"
        variables["hold_accum_ms"] = "0"
        for name, value in (
            ("resurrect", 0),
            ("progress", self._progress_us),
            ("progress_media", self._progress_media_us),
            ("end", end),
        ):
            variables[f"{name}_epoch"] = str(value // 1_000_000)
            variables[f"{name}_uepoch"] = str(value)
        if self.last_application is not None:
            variables["last_app"] = self.last_application
            if self._last_application_data:
                variables["last_arg"] = self._last_application_data
        name, number = self._shown_caller_id()
        variables["caller_id"] = f'"{name}" <{number}>' if name else number

        def since_created(moment: int) -> int:
            return moment - created if moment else 0

        billed = end - self._answered_us if self._answered_us else 0
        durations = (
            ("bill", billed),
            ("progress", since_created(self._progress_us)),
            ("answer", since_created(self._answered_us)),
            ("wait", 0),
            ("progress_media", since_created(self._progress_media_us)),
            ("flow_bill", billed),
        )
        units = (("", "sec", 1_000_000), ("m", "msec", 1_000), ("u", "usec", 1))
        for prefix, unit, divisor in units:
            variables[f"{prefix}duration"] = str((end - created) // divisor)
            for name, micros in durations:
                variables[f"{name}{unit}"] = str(micros // divisor)
