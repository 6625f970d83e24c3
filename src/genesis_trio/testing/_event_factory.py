"""Building events with the headers FreeSWITCH puts on every event.

The header templates (names, order, the ``Event-Calling-*`` site of each kind
of event) come from ``inbound_plain_lifecycle`` and the other captures.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate

import anyio

from ..protocol import Event

__all__ = ["SITES", "CallingSite", "EventFactory", "SwitchClock", "SwitchIdentity", "new_uuid"]


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class CallingSite:
    """Where in FreeSWITCH's source an event is fired (the ``Event-Calling-*`` headers)."""

    file: str
    function: str
    line: int


# Every site below is copied from the recorded events of FreeSWITCH 1.11.
SITES: dict[str, CallingSite] = {
    "CHANNEL_UUID": CallingSite("switch_core_session.c", "switch_core_session_set_uuid", 2056),
    "CHANNEL_OUTGOING": CallingSite(
        "switch_core_session.c", "switch_core_session_outgoing_channel", 768
    ),
    "CHANNEL_STATE": CallingSite(
        "switch_channel.c", "switch_channel_perform_set_running_state", 2409
    ),
    "CHANNEL_CREATE": CallingSite("switch_core_state_machine.c", "switch_core_session_run", 626),
    "CHANNEL_ORIGINATE": CallingSite("switch_core_state_machine.c", "switch_core_session_run", 632),
    "CHANNEL_CALLSTATE": CallingSite(
        "switch_channel.c", "switch_channel_perform_set_callstate", 302
    ),
    "CHANNEL_PROGRESS": CallingSite(
        "switch_channel.c", "switch_channel_perform_mark_ring_ready_value", 3507
    ),
    "CHANNEL_PROGRESS_MEDIA": CallingSite(
        "switch_channel.c", "switch_channel_perform_mark_pre_answered", 3562
    ),
    "CHANNEL_ANSWER": CallingSite("switch_channel.c", "switch_channel_perform_mark_answered", 3848),
    "CALL_UPDATE": CallingSite("switch_channel.c", "switch_channel_flip_cid", 3279),
    "CHANNEL_EXECUTE": CallingSite("switch_core_session.c", "switch_core_session_exec", 2949),
    "CHANNEL_EXECUTE_COMPLETE": CallingSite(
        "switch_core_session.c", "switch_core_session_exec", 2972
    ),
    "CHANNEL_PARK": CallingSite("switch_ivr.c", "switch_ivr_park", 1002),
    "CHANNEL_UNPARK": CallingSite("switch_ivr.c", "switch_ivr_park", 1213),
    "PLAYBACK_START": CallingSite("switch_ivr_play_say.c", "switch_ivr_play_file", 1649),
    "PLAYBACK_STOP": CallingSite("switch_ivr_play_say.c", "switch_ivr_play_file", 2023),
    "CHANNEL_HANGUP": CallingSite("switch_channel.c", "switch_channel_perform_hangup", 3447),
    "CHANNEL_HANGUP_COMPLETE": CallingSite(
        "switch_core_state_machine.c", "switch_core_session_reporting_state", 943
    ),
    "CHANNEL_DESTROY": CallingSite(
        "switch_core_session.c", "switch_core_session_perform_destroy", 1588
    ),
    "CHANNEL_DATA": CallingSite("mod_event_socket.c", "parse_command", 2029),
    "API": CallingSite("switch_loadable_module.c", "switch_api_execute", 3140),
    "BACKGROUND_JOB": CallingSite("mod_event_socket.c", "api_exec", 1580),
    "SENDEVENT": CallingSite("mod_event_socket.c", "parse_command", 2283),
    "CUSTOM": CallingSite("switch_event.c", "switch_event_fire_detailed", 2087),
    "CODEC_READ": CallingSite("switch_core_codec.c", "switch_core_session_set_read_codec", 300),
    "CODEC_WRITE": CallingSite("switch_core_codec.c", "switch_core_session_set_write_codec", 471),
    "UUID_BRIDGE_EXECUTE": CallingSite("switch_ivr_bridge.c", "uuid_bridge_on_soft_execute", 1),
    "BRIDGE": CallingSite("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1),
    "PRIVATE_COMMAND": CallingSite("switch_ivr.c", "switch_ivr_parse_next_event", 1),
    "DTMF": CallingSite("switch_channel.c", "switch_channel_dequeue_dtmf", 511),
}


@dataclass(frozen=True, slots=True)
class SwitchIdentity:
    """The switch-wide values every event carries."""

    core_uuid: str
    hostname: str = "fake-freeswitch"
    switchname: str = "fake-freeswitch"
    ipv4: str = "127.0.0.1"
    ipv6: str = "::1"


class SwitchClock:
    """Wall-clock timestamps that advance with AnyIO's clock.

    Event dates are anchored to the wall clock once, then advance with
    :func:`anyio.current_time`, so under trio's ``MockClock`` the recorded
    durations (billsec, answer times) follow virtual time.
    """

    __slots__ = ("_anchor_monotonic", "_anchor_wall")

    def __init__(self) -> None:
        self._anchor_wall: float | None = None
        self._anchor_monotonic = 0.0

    def now(self) -> float:
        """Seconds since the epoch."""
        try:
            current = anyio.current_time()
        except RuntimeError:
            # Outside an event loop (building an event in synchronous code).
            return time.time()
        if self._anchor_wall is None:
            self._anchor_wall = time.time()
            self._anchor_monotonic = current
        return self._anchor_wall + (current - self._anchor_monotonic)

    def now_us(self) -> int:
        return int(self.now() * 1_000_000)


def date_headers(epoch_us: int) -> list[tuple[str, str]]:
    seconds = epoch_us / 1_000_000
    return [
        ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))),
        ("Event-Date-GMT", formatdate(seconds, usegmt=True)),
        ("Event-Date-Timestamp", str(epoch_us)),
    ]


def local_stamp(epoch_us: int) -> str:
    """The ``*_stamp`` variables' format."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_us / 1_000_000))


class EventFactory:
    """Numbers events and gives them the standard header block."""

    __slots__ = ("_sequence", "clock", "identity")

    def __init__(self, identity: SwitchIdentity, clock: SwitchClock) -> None:
        self.identity = identity
        self.clock = clock
        self._sequence = 0

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def standard_headers(
        self, name: str, site: CallingSite, *, subclass: str | None = None
    ) -> list[tuple[str, str]]:
        """``Event-Name`` through ``Event-Sequence``, in FreeSWITCH's order."""
        identity = self.identity
        headers = [("Event-Name", name)]
        if subclass is not None:
            headers.append(("Event-Subclass", subclass))
        headers += [
            ("Core-UUID", identity.core_uuid),
            ("FreeSWITCH-Hostname", identity.hostname),
            ("FreeSWITCH-Switchname", identity.switchname),
            ("FreeSWITCH-IPv4", identity.ipv4),
            ("FreeSWITCH-IPv6", identity.ipv6),
            *date_headers(self.clock.now_us()),
            ("Event-Calling-File", site.file),
            ("Event-Calling-Function", site.function),
            ("Event-Calling-Line-Number", str(site.line)),
            ("Event-Sequence", str(self.next_sequence())),
        ]
        return headers

    def event(
        self,
        name: str,
        headers: Iterable[tuple[str, str]] = (),
        body: str | None = None,
        *,
        site: CallingSite | None = None,
        subclass: str | None = None,
    ) -> Event:
        """A new event: the standard block, then ``headers`` in order."""
        chosen = site or SITES.get(name) or SITES["CUSTOM"]
        return Event([*self.standard_headers(name, chosen, subclass=subclass), *headers], body)
