"""A channel's state as its events tell it: applied in event order, never polled."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

from ..protocol import Event
from ..protocol._headers import header_int

__all__ = [
    "HANGUP_EVENTS",
    "MILESTONE_EVENTS",
    "ChannelState",
    "ChannelStatus",
    "is_hangup",
]


class ChannelState(enum.IntEnum):
    """FreeSWITCH's ``Channel-State`` (``CS_*``); values are ``Channel-State-Number``."""

    NEW = 0
    INIT = 1
    ROUTING = 2
    SOFT_EXECUTE = 3
    EXECUTE = 4
    EXCHANGE_MEDIA = 5
    PARK = 6
    CONSUME_MEDIA = 7
    HIBERNATE = 8
    RESET = 9
    HANGUP = 10
    REPORTING = 11
    DESTROY = 12
    NONE = 13

    @classmethod
    def from_freeswitch(cls, name: str) -> ChannelState | None:
        """``"CS_EXECUTE"`` (or ``"EXECUTE"``) -> ``EXECUTE``; None for an unknown name."""
        # One dict lookup: every channel event carries a state name (``__members__``
        # builds a mapping proxy on each access).
        return _STATES_BY_NAME.get(name)

    @property
    def freeswitch_name(self) -> str:
        return "CS_" + self.name

    # An IntEnum prints as its number ("4"); a log line or a print wants the name.
    def __str__(self) -> str:
        return self.freeswitch_name

    def __format__(self, format_spec: str) -> str:
        return format(str(self), format_spec)

    @property
    def ended(self) -> bool:
        """HANGUP, REPORTING or DESTROY: the channel is gone or going."""
        return ChannelState.HANGUP <= self <= ChannelState.DESTROY


_STATES_BY_NAME: dict[str, ChannelState] = {
    **{state.name: state for state in ChannelState},
    **{"CS_" + state.name: state for state in ChannelState},
}

HANGUP_EVENTS = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"})

# Events that happen at most once in a channel's life: a wait for one that
# already happened returns it at once instead of waiting for a second one.
MILESTONE_EVENTS = frozenset(
    {
        "CHANNEL_CREATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_ANSWER",
        *HANGUP_EVENTS,
    }
)

_ENDED_STATES = frozenset(("CS_HANGUP", "CS_REPORTING", "CS_DESTROY"))

# Events a channel holds undecoded before merging them into its data (each a few KiB:
# at most ~200 KiB per live channel; a bridged call's leg sees about 40 events in all).
_UNFOLDED_LIMIT = 64


def is_hangup(event: Event) -> bool:
    """Does this event of a channel say the channel has hung up?"""
    return (
        event.get("Event-Name") in HANGUP_EVENTS
        or event.get("Answer-State") == "hangup"
        or event.get("Channel-State") in _ENDED_STATES
    )


class ChannelStatus:
    """What the events of one channel said so far.

    Fed synchronously by the connection's reader, in the order FreeSWITCH sent
    the events, so it is already current when any waiter wakes up.
    """

    __slots__ = (
        "_data",
        "_newest_sequence",
        "_unfolded",
        "answer_state",
        "answered",
        "bridged_to",
        "call_state",
        "events_seen",
        "hangup_cause",
        "hangup_cause_q850",
        "hung_up",
        "milestones",
        "park_event",
        "state",
        "uuid",
    )

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.state = ChannelState.NEW
        self.call_state: str | None = None
        self.answer_state: str | None = None
        self.answered = False
        self.bridged_to: str | None = None
        self.hung_up = False
        self.hangup_cause: str | None = None
        self.hangup_cause_q850: int | None = None
        self.milestones: dict[str, Event] = {}
        self.park_event: Event | None = None  # the CHANNEL_PARK of the park we are in
        self._data: dict[str, str] = {}
        # Events applied but not yet merged into ``data``: merging needs every
        # header, i.e. a full decode, which most programs never ask for.
        self._unfolded: list[Event] = []
        self.events_seen = 0
        self._newest_sequence = -1

    @property
    def data(self) -> dict[str, str]:
        """Every header the channel's events carried, the latest value of each."""
        if self._unfolded:
            self._fold()
        return self._data

    def _fold(self) -> None:
        unfolded, data = self._unfolded, self._data
        while unfolded:
            # One at a time: an event that fails to decode raises once, the rest still merge.
            data.update(unfolded.pop(0).headers._first)

    def apply(self, event: Event) -> None:
        """Apply one event whose ``Unique-ID`` is this channel.

        Only the few headers the state needs are read (straight from the
        event's bytes); the rest reach :attr:`data` when someone reads it.
        """
        self.events_seen += 1
        unfolded = self._unfolded
        unfolded.append(event)
        if len(unfolded) >= _UNFOLDED_LIMIT:
            self._fold()  # a long call: keep the held events bounded
        get = event.get
        name = get("Event-Name")
        sequence_text = get("Event-Sequence")
        sequence = (
            int(sequence_text) if sequence_text is not None and sequence_text.isdigit() else None
        )
        if sequence is not None and sequence < self._newest_sequence:
            # FreeSWITCH fires a call's events from several threads and does not keep
            # them in order (a CHANNEL_CREATE was seen after its CHANNEL_ANSWER): an
            # older event may still say the call hung up, never move its state back.
            self._apply_fields(name, None, None, None, get)
        else:
            if sequence is not None:
                self._newest_sequence = sequence
            self._apply_fields(
                name, get("Channel-State"), get("Channel-Call-State"), get("Answer-State"), get
            )
        if name is None:
            return
        if name in MILESTONE_EVENTS:
            self.milestones.setdefault(name, event)
        if name == "CHANNEL_ANSWER":
            self.answered = True
        elif name == "CHANNEL_BRIDGE":
            self.bridged_to = _other_leg(event, self.uuid)
        elif name == "CHANNEL_UNBRIDGE":
            self.bridged_to = None
        elif name == "CHANNEL_PARK":
            self.park_event = event
        elif name == "CHANNEL_UNPARK":
            self.park_event = None
        elif name == "CHANNEL_DESTROY":
            self.state = ChannelState.DESTROY

    def apply_peer_bridge(self, event: Event) -> None:
        """A CHANNEL_(UN)BRIDGE fired on the other leg, naming this one as its B leg."""
        if event.get("Event-Name") == "CHANNEL_BRIDGE":
            self.bridged_to = event.get("Bridge-A-Unique-ID")
        else:
            self.bridged_to = None

    def apply_snapshot(self, headers: Mapping[str, str]) -> None:
        """Channel data read once (``connect`` reply, ``uuid_dump``).

        Events seen since tracking began are newer than any snapshot fetched
        meanwhile, so a snapshot only fills what no event has said yet.
        """
        if isinstance(headers, Event):
            if not self.events_seen and not self._data:
                # The first thing known of the channel: held as received, like its
                # events, and merged into ``data`` only when someone reads that (an
                # outbound session's ~100 variables are mostly never read).
                self._unfolded.append(headers)
                get = headers.get
                self._apply_fields(
                    get("Event-Name"),
                    get("Channel-State"),
                    get("Channel-Call-State"),
                    get("Answer-State"),
                    get,
                )
                return
            headers = headers.headers._first  # a plain dict: merged in C, not key by key
        if self.events_seen:
            for key, value in headers.items():
                self.data.setdefault(key, value)
            if not self.hung_up and headers.get("Answer-State") == "hangup":
                self._mark_hung_up(headers.get("Hangup-Cause"))
            return
        self.data.update(headers)
        self._apply_fields(
            headers.get("Event-Name"),
            headers.get("Channel-State"),
            headers.get("Channel-Call-State"),
            headers.get("Answer-State"),
            headers.get,
        )

    def _apply_fields(
        self,
        name: str | None,
        state_name: str | None,
        call_state: str | None,
        answer_state: str | None,
        get: Callable[[str], str | None],
    ) -> None:
        if state_name is not None:
            state = ChannelState.from_freeswitch(state_name)
            if state is not None:
                self.state = state
        if call_state is not None:
            self.call_state = call_state
        if answer_state is not None:
            self.answer_state = answer_state
            if answer_state == "answered":
                self.answered = True
        if answer_state == "hangup" or state_name in _ENDED_STATES or name in HANGUP_EVENTS:
            if self.hung_up:
                # Told again (FreeSWITCH does, several times): only this event is new, and
                # only what is still unknown is read from it (the Q.850 variable sits deep
                # in the event, or is absent: a scan of all of it).
                self._note_hangup(
                    get("Hangup-Cause") if self.hangup_cause is None else None,
                    get("variable_hangup_cause_q850") if self.hangup_cause_q850 is None else None,
                )
            else:
                self._mark_hung_up(get("Hangup-Cause"))

    def mark_gone(self, cause: str | None = None) -> None:
        """The channel ended without (further) events saying so (socket closed by the switch)."""
        if not self.hung_up:
            self._mark_hung_up(cause)

    def _mark_hung_up(self, cause: str | None) -> None:
        self.hung_up = True
        known = self.hangup_cause_q850 is not None
        self._note_hangup(cause, None if known else self._latest("variable_hangup_cause_q850"))

    def _note_hangup(self, cause: str | None, q850: str | None) -> None:
        self.bridged_to = None
        self.park_event = None
        if cause and self.hangup_cause is None:
            self.hangup_cause = cause
        if self.hangup_cause_q850 is None:
            self.hangup_cause_q850 = header_int(q850)

    def _latest(self, name: str) -> str | None:
        """``data.get(name)`` without merging: the newest event carrying it says."""
        for event in reversed(self._unfolded):
            value = event.get(name)
            if value is not None:
                return value
        return self._data.get(name)


def _other_leg(event: Event, uuid: str) -> str | None:
    a_leg = event.get("Bridge-A-Unique-ID")
    b_leg = event.get("Bridge-B-Unique-ID")
    if a_leg == uuid:
        return b_leg
    if b_leg == uuid:
        return a_leg
    return event.get("Other-Leg-Unique-ID")
