"""``freeswitch.channel.*`` / ``freeswitch.call.update`` spans from channel events.

Each span describes one thing FreeSWITCH reported; it has no duration of its
own. Every one carries ``channel.uuid`` and ``sip.call_id`` (when FreeSWITCH
knows it) so a call can be joined with any other SIP observer's view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from . import _names as n
from ._metrics import Instruments, Tally

__all__ = ["LIFECYCLE_EVENTS", "LifecycleProcessor"]

Headers = Mapping[str, str]
Attributes = dict[str, AttributeValue]


def copy(attributes: Attributes, key: str, headers: Headers, header: str) -> None:
    value = headers.get(header)
    if value:
        attributes[key] = value


def emit_span(
    tracer: trace.Tracer,
    name: str,
    attributes: Attributes,
    parent: Context | None,
    events: Iterable[tuple[str, Attributes]] = (),
) -> None:
    """One span for one reported fact: it has no duration of its own."""
    span = tracer.start_span(name, context=parent, attributes=attributes)
    for event_name, event_attributes in events:
        span.add_event(event_name, event_attributes)
    span.end()


def channel_attributes(headers: Headers) -> Attributes:
    """The attributes every channel span carries."""
    attributes: Attributes = {}
    copy(attributes, n.CHANNEL_UUID, headers, "Unique-ID")
    copy(attributes, n.CHANNEL_CALL_UUID, headers, "Channel-Call-UUID")
    copy(attributes, n.CHANNEL_DIRECTION, headers, "Call-Direction")
    copy(attributes, n.SIP_CALL_ID, headers, "variable_sip_call_id")
    return attributes


def normalize_cause(cause: str) -> str:
    return cause.strip().lower().replace(" ", "_") or "unknown"


class LifecycleProcessor:
    """Emits the lifecycle span (and its metrics) for one channel event."""

    def __init__(
        self, tracer: trace.Tracer | None, instruments: Instruments | None, tally: Tally | None
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._tally = tally
        self._emitters: dict[str, Callable[[Headers, Attributes, Context | None], None]] = {
            "CHANNEL_CREATE": self._create,
            "CHANNEL_PROGRESS": self._progress,
            "CHANNEL_PROGRESS_MEDIA": self._progress_media,
            "CHANNEL_ANSWER": self._answer,
            "CHANNEL_BRIDGE": self._bridge,
            "CHANNEL_UNBRIDGE": self._unbridge,
            "CHANNEL_HANGUP": self._hangup,
            "CHANNEL_HANGUP_COMPLETE": self._hangup_complete,
            "CHANNEL_DESTROY": self._destroy,
            "CHANNEL_EXECUTE": self._execute,
            "CHANNEL_EXECUTE_COMPLETE": self._execute_complete,
            "CHANNEL_PARK": self._park,
            "CHANNEL_UNPARK": self._unpark,
            "CODEC": self._codec,
            "CALL_UPDATE": self._call_update,
        }

    def handles(self, event_name: str) -> bool:
        return event_name in self._emitters

    def process(self, event_name: str, headers: Headers, parent: Context | None) -> None:
        """Emit the event's span under ``parent`` and count its metrics.

        ``parent=None``: metrics only (nothing records spans for this event).
        """
        emit = self._emitters.get(event_name)
        if emit is None:
            return
        attributes = channel_attributes(headers)
        tally = self._tally
        if tally is not None and n.SIP_CALL_ID not in attributes:
            counts = tally.events_without_sip_call_id
            key = ((n.EVENT_NAME, event_name),)
            counts[key] = counts.get(key, 0) + 1
        emit(headers, attributes, parent)

    # --- span plumbing ---------------------------------------------------------------
    def _span(
        self,
        name: str,
        attributes: Attributes,
        parent: Context | None,
        events: tuple[tuple[str, Attributes], ...] = (),
    ) -> None:
        if self._tracer is None or parent is None:
            return
        emit_span(self._tracer, name, attributes, parent, events)

    def _count(self, which: str, amount: int, labels: Mapping[str, str]) -> None:
        tally = self._tally
        if tally is not None:
            tally.add(which, amount, labels)

    # --- emitters --------------------------------------------------------------------
    def _create(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        copy(attributes, n.CHANNEL_NAME, headers, "Channel-Name")
        copy(attributes, n.CHANNEL_DESTINATION_NUMBER, headers, "Caller-Destination-Number")
        copy(attributes, n.CHANNEL_CONTEXT, headers, "Caller-Context")
        copy(attributes, n.CHANNEL_STATE, headers, "Channel-State")
        self._span(n.FS_CHANNEL_CREATE, attributes, parent)
        self._count("calls_active", 1, {"direction": headers.get("Call-Direction") or "unknown"})

    def _codec_names(self, headers: Headers, attributes: Attributes) -> None:
        copy(attributes, n.READ_CODEC_NAME, headers, "Channel-Read-Codec-Name")
        copy(attributes, n.WRITE_CODEC_NAME, headers, "Channel-Write-Codec-Name")

    def _progress(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        copy(attributes, n.CHANNEL_STATE, headers, "Channel-State")
        attributes[n.ANSWER_STATE] = headers.get("Answer-State") or "ringing"
        self._codec_names(headers, attributes)
        self._span(n.FS_CHANNEL_PROGRESS, attributes, parent)

    def _progress_media(
        self, headers: Headers, attributes: Attributes, parent: Context | None
    ) -> None:
        copy(attributes, n.CHANNEL_STATE, headers, "Channel-State")
        attributes[n.ANSWER_STATE] = headers.get("Answer-State") or "early"
        self._codec_names(headers, attributes)
        self._span(n.FS_CHANNEL_PROGRESS_MEDIA, attributes, parent)

    def _answer(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        copy(attributes, n.CHANNEL_STATE, headers, "Channel-State")
        attributes[n.ANSWER_STATE] = headers.get("Answer-State") or "answered"
        self._codec_names(headers, attributes)
        self._span(n.FS_CHANNEL_ANSWER, attributes, parent)
        instruments = self._instruments
        if instruments is not None:
            ring = _seconds_between(
                headers, "Caller-Channel-Created-Time", "Caller-Channel-Answered-Time"
            )
            if ring is not None:
                direction = headers.get("Call-Direction") or "unknown"
                instruments.call_ring_duration.record(ring, {"direction": direction})

    def _bridge(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        copy(attributes, n.BRIDGE_A_UUID, headers, "Bridge-A-Unique-ID")
        copy(attributes, n.BRIDGE_B_UUID, headers, "Bridge-B-Unique-ID")
        copy(attributes, n.OTHER_LEG_PREFIX + "uuid", headers, "Other-Leg-Unique-ID")
        copy(attributes, n.OTHER_LEG_PREFIX + "type", headers, "Other-Type")
        copy(attributes, n.OTHER_LEG_PREFIX + "direction", headers, "Other-Leg-Direction")
        copy(attributes, n.OTHER_LEG_PREFIX + "channel_name", headers, "Other-Leg-Channel-Name")
        copy(
            attributes,
            n.OTHER_LEG_PREFIX + "destination_number",
            headers,
            "Other-Leg-Destination-Number",
        )
        copy(
            attributes,
            n.OTHER_LEG_PREFIX + "caller_id_number",
            headers,
            "Other-Leg-Caller-ID-Number",
        )
        legs: Attributes = {
            n.BRIDGE_A_UUID: attributes.get(n.BRIDGE_A_UUID, "unknown"),
            n.BRIDGE_B_UUID: attributes.get(n.BRIDGE_B_UUID, "unknown"),
        }
        self._span(n.FS_CHANNEL_BRIDGE, attributes, parent, ((n.EVENT_BRIDGE_ESTABLISHED, legs),))
        self._count("bridge_events", 1, {"bridge.result": "established"})

    def _unbridge(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        copy(attributes, n.BRIDGE_A_UUID, headers, "Bridge-A-Unique-ID")
        copy(attributes, n.BRIDGE_B_UUID, headers, "Bridge-B-Unique-ID")
        if n.BRIDGE_B_UUID not in attributes:
            copy(attributes, n.BRIDGE_B_UUID, headers, "Other-Leg-Unique-ID")
        copy(attributes, n.HANGUP_CAUSE, headers, "Hangup-Cause")
        legs: Attributes = {
            n.BRIDGE_A_UUID: attributes.get(n.BRIDGE_A_UUID, "unknown"),
            n.BRIDGE_B_UUID: attributes.get(n.BRIDGE_B_UUID, "unknown"),
        }
        self._span(n.FS_CHANNEL_UNBRIDGE, attributes, parent, ((n.EVENT_BRIDGE_TORN_DOWN, legs),))
        labels = {"bridge.result": "unbridged"}
        cause = headers.get("Hangup-Cause")
        if cause:
            labels[n.HANGUP_CAUSE] = cause
        self._count("bridge_events", 1, labels)

    def _hangup(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        cause = _hangup_cause(headers, attributes)
        copy(attributes, n.CHANNEL_STATE, headers, "Channel-State")
        event_name = n.EVENT_HANGUP_CAUSE_PREFIX + normalize_cause(cause)
        self._span(
            n.FS_CHANNEL_HANGUP, attributes, parent, ((event_name, {n.HANGUP_CAUSE: cause}),)
        )
        self._count("hangup_causes", 1, {n.HANGUP_CAUSE: cause})

    def _hangup_complete(
        self, headers: Headers, attributes: Attributes, parent: Context | None
    ) -> None:
        cause = _hangup_cause(headers, attributes)
        copy(attributes, n.HANGUP_CAUSE_Q850, headers, "variable_hangup_cause_q850")
        duration = _call_duration(headers)
        if duration is not None:
            attributes[n.CALL_DURATION] = duration
        finalized: Attributes = {n.HANGUP_CAUSE: cause}
        instruments = self._instruments
        if instruments is not None:
            direction = headers.get("Call-Direction") or "unknown"
            if duration is not None:
                instruments.call_duration.record(
                    duration, {"direction": direction, n.HANGUP_CAUSE: cause}
                )
            q850 = headers.get("variable_hangup_cause_q850") or ""
            # A closed set of small numbers (Q.850 causes are 1..127); anything else is "unknown".
            code = q850 if q850.isdigit() and int(q850) < 128 else "unknown"
            self._count("hangup_causes_q850", 1, {"hangup.cause.q850": code, n.HANGUP_CAUSE: cause})
        self._span(
            n.FS_CHANNEL_HANGUP_COMPLETE,
            attributes,
            parent,
            ((n.EVENT_CALL_FINALIZED, finalized),),
        )

    def _destroy(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        self._span(n.FS_CHANNEL_DESTROY, attributes, parent)
        self._count("calls_active", -1, {"direction": headers.get("Call-Direction") or "unknown"})

    def _execute(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        application = _application(headers, attributes)
        self._span(n.FS_CHANNEL_EXECUTE, attributes, parent)
        self._count(
            "dialplan_applications",
            1,
            {n.APPLICATION_NAME: application, n.APPLICATION_RESULT: "started"},
        )

    def _execute_complete(
        self, headers: Headers, attributes: Attributes, parent: Context | None
    ) -> None:
        application = _application(headers, attributes)
        copy(attributes, n.APPLICATION_RESPONSE, headers, "Application-Response")
        response = headers.get("Application-Response") or ""
        result = "fail" if response.startswith("-ERR") else "success"
        done: Attributes = {n.APPLICATION_NAME: application, n.APPLICATION_RESULT: result}
        self._span(
            n.FS_CHANNEL_EXECUTE_COMPLETE,
            attributes,
            parent,
            ((f"app.{application}.done", done),),
        )
        self._count(
            "dialplan_applications",
            1,
            {n.APPLICATION_NAME: application, n.APPLICATION_RESULT: result},
        )

    def _park(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        copy(attributes, n.CHANNEL_STATE, headers, "Channel-State")
        self._span(n.FS_CHANNEL_PARK, attributes, parent)

    def _unpark(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        copy(attributes, n.CHANNEL_STATE, headers, "Channel-State")
        self._span(n.FS_CHANNEL_UNPARK, attributes, parent)

    def _codec(self, headers: Headers, attributes: Attributes, parent: Context | None) -> None:
        for prefix, side in ((n.READ_CODEC_PREFIX, "Read"), (n.WRITE_CODEC_PREFIX, "Write")):
            copy(attributes, prefix + "name", headers, f"Channel-{side}-Codec-Name")
            _copy_int(attributes, prefix + "rate", headers, f"Channel-{side}-Codec-Rate")
            _copy_int(attributes, prefix + "bit_rate", headers, f"Channel-{side}-Codec-Bit-Rate")
        self._span(n.FS_CHANNEL_CODEC, attributes, parent)
        self._count(
            "codec_changes",
            1,
            {
                # Genesis's label keys (the span attributes say .name): dashboards carry over.
                "channel.read_codec": headers.get("Channel-Read-Codec-Name") or "unknown",
                "channel.write_codec": headers.get("Channel-Write-Codec-Name") or "unknown",
            },
        )

    def _call_update(
        self, headers: Headers, attributes: Attributes, parent: Context | None
    ) -> None:
        copy(attributes, n.BRIDGED_TO, headers, "Bridged-To")
        copy(attributes, n.CALLER_TRANSFER_SOURCE, headers, "Caller-Transfer-Source")
        copy(attributes, "caller.caller_id_name", headers, "Caller-Caller-ID-Name")
        copy(attributes, "caller.caller_id_number", headers, "Caller-Caller-ID-Number")
        self._span(n.FS_CALL_UPDATE, attributes, parent, ((n.EVENT_CALLER_ID_MUTATED, {}),))


LIFECYCLE_EVENTS: Final = frozenset(
    {
        "CHANNEL_CREATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_ANSWER",
        "CHANNEL_BRIDGE",
        "CHANNEL_UNBRIDGE",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_DESTROY",
        "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_PARK",
        "CHANNEL_UNPARK",
        "CODEC",
        "CALL_UPDATE",
    }
)


def _hangup_cause(headers: Headers, attributes: Attributes) -> str:
    cause = headers.get("Hangup-Cause") or "unknown"
    attributes[n.HANGUP_CAUSE] = cause
    return cause


def _application(headers: Headers, attributes: Attributes) -> str:
    """Copies what both CHANNEL_EXECUTE and its _COMPLETE say about the application."""
    application = headers.get("Application") or "unknown"
    attributes[n.APPLICATION_NAME] = application
    copy(attributes, n.APPLICATION_UUID, headers, "Application-UUID")
    copy(attributes, n.APPLICATION_DATA, headers, "Application-Data")
    return application


def _copy_int(attributes: Attributes, key: str, headers: Headers, header: str) -> None:
    value = headers.get(header)
    if value and value.isdigit():
        attributes[key] = int(value)


def _call_duration(headers: Headers) -> float | None:
    """Seconds from channel creation to hangup, from FreeSWITCH's microsecond stamps."""
    return _seconds_between(headers, "Caller-Channel-Created-Time", "Caller-Channel-Hangup-Time")


def _seconds_between(headers: Headers, first: str, second: str) -> float | None:
    """Seconds between two of FreeSWITCH's microsecond stamps (0 means "never")."""
    created = headers.get(first)
    ended = headers.get(second)
    if not (created and ended and created.isdigit() and ended.isdigit()):
        return None
    start, end = int(created), int(ended)
    if start <= 0 or end < start:
        return None
    return (end - start) / 1_000_000
