"""Which events a connection receives: ``event``/``nixevent``/``noevents``/``filter``/``myevents``.

The semantics are mod_event_socket's: ``ALL`` delivers everything; ``CUSTOM``
followed by subclass names subscribes those subclasses; once any filter
exists, an event is delivered only if a filter matches it (``-`` filters veto).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol import MYEVENTS_NAMES, Event, EventFormat, fsparse

__all__ = ["EVENT_NAMES", "Subscription"]

# switch_event.c's EVENT_NAMES: the names `event` accepts (others are ignored).
EVENT_NAMES = frozenset(
    [
        "CUSTOM",
        "CLONE",
        "CHANNEL_CREATE",
        "CHANNEL_DESTROY",
        "CHANNEL_STATE",
        "CHANNEL_CALLSTATE",
        "CHANNEL_ANSWER",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_HOLD",
        "CHANNEL_UNHOLD",
        "CHANNEL_BRIDGE",
        "CHANNEL_UNBRIDGE",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_OUTGOING",
        "CHANNEL_PARK",
        "CHANNEL_UNPARK",
        "CHANNEL_APPLICATION",
        "CHANNEL_ORIGINATE",
        "CHANNEL_UUID",
        "API",
        "LOG",
        "INBOUND_CHAN",
        "OUTBOUND_CHAN",
        "STARTUP",
        "SHUTDOWN",
        "PUBLISH",
        "UNPUBLISH",
        "TALK",
        "NOTALK",
        "SESSION_CRASH",
        "MODULE_LOAD",
        "MODULE_UNLOAD",
        "DTMF",
        "MESSAGE",
        "PRESENCE_IN",
        "NOTIFY_IN",
        "PRESENCE_OUT",
        "PRESENCE_PROBE",
        "MESSAGE_WAITING",
        "MESSAGE_QUERY",
        "ROSTER",
        "CODEC",
        "BACKGROUND_JOB",
        "DETECTED_SPEECH",
        "DETECTED_TONE",
        "PRIVATE_COMMAND",
        "HEARTBEAT",
        "TRAP",
        "ADD_SCHEDULE",
        "DEL_SCHEDULE",
        "EXE_SCHEDULE",
        "RE_SCHEDULE",
        "RELOADXML",
        "NOTIFY",
        "PHONE_FEATURE",
        "PHONE_FEATURE_SUBSCRIBE",
        "SEND_MESSAGE",
        "RECV_MESSAGE",
        "REQUEST_PARAMS",
        "CHANNEL_DATA",
        "GENERAL",
        "COMMAND",
        "SESSION_HEARTBEAT",
        "CLIENT_DISCONNECTED",
        "SERVER_DISCONNECTED",
        "SEND_INFO",
        "RECV_INFO",
        "RECV_RTCP_MESSAGE",
        "SEND_RTCP_MESSAGE",
        "CALL_SECURE",
        "NAT",
        "RECORD_START",
        "RECORD_STOP",
        "PLAYBACK_START",
        "PLAYBACK_STOP",
        "CALL_UPDATE",
        "FAILURE",
        "SOCKET_DATA",
        "MEDIA_BUG_START",
        "MEDIA_BUG_STOP",
        "CONFERENCE_DATA_QUERY",
        "CONFERENCE_DATA",
        "CALL_SETUP_REQ",
        "CALL_SETUP_RESULT",
        "CALL_DETAIL",
        "DEVICE_STATE",
        "TEXT",
        "SHUTDOWN_REQUESTED",
        "ALL",
    ]
)

_FORMATS: dict[str, EventFormat] = {"plain": "plain", "json": "json", "xml": "xml"}


def _event_name(token: str) -> str | None:
    name = token.upper()
    if name.startswith("SWITCH_EVENT_"):
        name = name[len("SWITCH_EVENT_") :]
    return name if name in EVENT_NAMES else None


@dataclass(slots=True)
class Subscription:
    """One connection's event subscription state."""

    format: EventFormat = "plain"
    enabled: bool = False
    all_events: bool = False
    names: set[str] = field(default_factory=set)
    subclasses: set[str] = field(default_factory=set)
    filters: list[tuple[str, str]] | None = None
    session_uuid: str | None = None

    # ----------------------------------------------------------- commands

    def event(self, tokens: list[str]) -> str:
        """``event [format] names...``: the reply text."""
        custom = False
        keywords = 0
        for index, token in enumerate(tokens):
            if index == 0 and token.lower() in _FORMATS:
                self.format = _FORMATS[token.lower()]
                continue
            if custom:
                self.subclasses.add(token)
                continue
            name = _event_name(token)
            if name is None:
                continue
            keywords += 1
            if name == "ALL":
                self.all_events = True
            self.names.add(name)
            if name == "CUSTOM":
                custom = True
        if not keywords:
            return "-ERR no keywords supplied"
        self.enabled = True
        return f"+OK event listener enabled {self.format}"

    def nixevent(self, tokens: list[str]) -> str:
        custom = False
        keywords = 0
        for token in tokens:
            if custom:
                self.subclasses.discard(token)
                continue
            name = _event_name(token)
            if name is None:
                continue
            keywords += 1
            if name == "CUSTOM":
                custom = True
            elif name == "ALL":
                self.all_events = False
                self.names.clear()
            else:
                if self.all_events:
                    # Un-ALL: every named event stays, except this one.
                    self.all_events = False
                    self.names |= EVENT_NAMES - {"ALL"}
                self.names.discard(name)
        if not keywords:
            return "-ERR no keywords supplied"
        self.enabled = True
        return "+OK events nixed"

    def noevents(self) -> str:
        if not self.enabled:
            return "-ERR not listening for events"
        self.enabled = False
        self.all_events = False
        self.names.clear()
        self.subclasses.clear()
        return "+OK no longer listening for events"

    def myevents(self, uuid: str, event_format: str | None) -> str:
        self.session_uuid = uuid
        self.names |= MYEVENTS_NAMES
        self.enabled = True
        if event_format is not None and event_format.lower() in _FORMATS:
            self.format = _FORMATS[event_format.lower()]
        return "+OK Events Enabled"

    def filter(self, argument: str) -> str:
        """``filter <header> <value>`` / ``filter delete <header> [<value>]``."""
        header_name, _, header_value = argument.lstrip(" ").partition(" ")
        if self.filters is None:
            self.filters = []
        if header_name.lower() == "delete" and header_value:
            header_name, _, value = header_value.partition(" ")
            if header_name.lower() == "all":
                self.filters = []
            else:
                doomed = header_name.lower()
                self.filters = [
                    (name, existing)
                    for name, existing in self.filters
                    if not (name.lower() == doomed and (not value or existing == value))
                ]
            return f"+OK filter deleted. [{header_name}][{value}]"
        if header_value:
            if header_name.lower() == "add":
                header_name, _, header_value = header_value.partition(" ")
            self.filters.append((header_name, header_value))
            return f"+OK filter added. [{header_name}]=[{header_value}]"
        return "-ERR invalid syntax"

    # ----------------------------------------------------------- matching

    def wants(self, event: Event) -> bool:
        if not self.enabled:
            return False
        name = event.get("Event-Name")
        if not self.all_events:
            if name is None or name not in self.names:
                return False
            subclass = event.get("Event-Subclass")
            if name == "CUSTOM" and subclass and subclass not in self.subclasses:
                return False
        if self.filters and not _passes_filters(event, self.filters):
            return False
        if self.session_uuid is not None:
            return event.get("Unique-ID") == self.session_uuid
        return True


def _passes_filters(event: Event, filters: list[tuple[str, str]]) -> bool:
    """mod_event_socket's filter loop: a match of a ``+`` (default) filter
    admits the event, a match of a ``-`` filter rejects it outright."""
    send = False
    for header_name, raw in filters:
        value = _header_value(event, header_name)
        if value is None:
            continue
        positive, matched = fsparse.filter_matches(raw, value)
        if send and positive:
            continue
        if matched:
            if not positive:
                return False
            send = True
    return send


def _header_value(event: Event, name: str) -> str | None:
    value = event.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key in event:
        if key.lower() == lowered:
            return event[key]
    return None
