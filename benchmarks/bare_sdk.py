"""The bare-SDK limit: what the OpenTelemetry SDK alone allows per recorded event.

    uv run python -m benchmarks.bare_sdk --events 10000            # one JSON sample
    uv run python -m benchmarks.bare_sdk --describe                # what is replayed
    uv run python -m benchmarks.bare_sdk --api --calls 5000        # the same for api calls

First it *measures* what genesis_trio records for each event of the recorded
lifecycle (the same captures the event source sends): every event goes
through a connection's telemetry hook with an in-memory span exporter and a
meter provider that logs every instrument call. That gives, per event, the
spans (name, parent, attributes, span events) and the metric calls
(instrument, amount, labels) the library makes.

Then, with no library at all, a loop replays exactly that against the SDK set
up as in the benchmarks (:func:`benchmarks.ours.install_sdk`: a
``TracerProvider`` with a ``BatchSpanProcessor`` and a dropping exporter, a
``MeterProvider``): for each event, ``tracer.start_span(name, context=parent,
attributes=prebuilt)`` for each span, ``add_event`` for its span events,
``end()``, and the same ``add``/``record`` calls on the same instruments. The
attribute dictionaries are built before the clock starts, so the loop is the
SDK's own cost and nothing else: the events/s no library can beat with the
same telemetry.

With ``--api`` it does the same for one ``api status`` round trip: the
``send_command`` span and metric calls a connection's telemetry makes for the
recorded reply, replayed per call (``start_span`` with the attributes known
before the reply, ``set_attribute`` for the reply's, ``end``, the metric calls):
the api calls/s no library can beat with the same telemetry.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from benchmarks.ours import install_sdk
from benchmarks.source import RECORDED_API_STATUS, load_recording
from genesis_trio.protocol import NEED_DATA, ApiResponse, ESLParser, Event
from genesis_trio.tracing import ConnectionTelemetry

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

Attributes = dict[str, AttributeValue]


@dataclass(frozen=True)
class SpanCall:
    name: str
    parent: int | None  # index of the parent span among this event's spans; None: call context
    attributes: Attributes
    events: tuple[tuple[str, Attributes], ...]


@dataclass(frozen=True)
class MetricCall:
    kind: str  # counter | up_down_counter | histogram
    name: str
    amount: float
    labels: Attributes


@dataclass
class EventCalls:
    """What the library records for one event."""

    event_name: str
    call_key: str | None
    spans: list[SpanCall] = field(default_factory=list)
    metrics: list[MetricCall] = field(default_factory=list)


# --- a meter provider that logs every instrument call ----------------------------


class _LoggingInstrument:
    def __init__(self, kind: str, name: str, log: list[MetricCall]) -> None:
        self._kind, self._name, self._log = kind, name, log

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None, **_: Any) -> None:
        self._log.append(MetricCall(self._kind, self._name, amount, dict(attributes or {})))

    record = set = add


class _LoggingMeter:
    def __init__(self, log: list[MetricCall]) -> None:
        self._log = log

    def create_counter(self, name: str, **_: Any) -> _LoggingInstrument:
        return _LoggingInstrument("counter", name, self._log)

    def create_up_down_counter(self, name: str, **_: Any) -> _LoggingInstrument:
        return _LoggingInstrument("up_down_counter", name, self._log)

    def create_histogram(self, name: str, **_: Any) -> _LoggingInstrument:
        return _LoggingInstrument("histogram", name, self._log)

    def create_gauge(self, name: str, **_: Any) -> _LoggingInstrument:
        return _LoggingInstrument("gauge", name, self._log)

    def __getattr__(self, attribute: str) -> Any:
        # Observable instruments report through callbacks when a reader collects, not per
        # event: nothing to replay.
        if attribute.startswith("create_observable_"):
            return lambda name, *args, **kwargs: None
        raise AttributeError(attribute)


class _LoggingMeterProvider:
    def __init__(self) -> None:
        self.log: list[MetricCall] = []

    def get_meter(self, *_: Any, **__: Any) -> _LoggingMeter:
        return _LoggingMeter(self.log)


# --- measuring what the library records --------------------------------------------


def recorded_events(event_format: str = "plain") -> list[Event]:
    """The recorded lifecycle as a connection's parser yields it (lazy events)."""
    parser = ESLParser(lazy_events=True)
    parser.receive_data(load_recording(event_format).cycle)
    events: list[Event] = []
    while (message := parser.next_event()) is not NEED_DATA:
        if isinstance(message, Event):
            events.append(message)
    return events


def _logged_telemetry() -> tuple[InMemorySpanExporter, _LoggingMeterProvider, ConnectionTelemetry]:
    """A connection's telemetry whose spans land in memory and whose metric calls are logged."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = _LoggingMeterProvider()
    telemetry = ConnectionTelemetry.create(
        "inbound",
        tracer_provider=tracer_provider,
        meter_provider=cast(metrics.MeterProvider, meter_provider),
    )
    assert telemetry is not None
    return exporter, meter_provider, telemetry


def measure(event_format: str = "plain") -> list[EventCalls]:
    """Run every recorded event through genesis_trio's telemetry and log what it records."""
    exporter, meter_provider, telemetry = _logged_telemetry()
    measured: list[EventCalls] = []
    for event in recorded_events(event_format):
        exporter.clear()
        meter_provider.log.clear()
        telemetry.event_received(event)
        # What the reader records once the event is routed (the processing-time histogram).
        telemetry.event_routed(event, 0.0)
        spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)
        ids = [s.context.span_id for s in spans if s.context is not None]
        calls = EventCalls(
            event.get("Event-Name") or "UNKNOWN",
            event.get("Channel-Call-UUID") or event.get("Unique-ID"),
        )
        for span in spans:
            parent_id = span.parent.span_id if span.parent is not None else None
            calls.spans.append(
                SpanCall(
                    span.name,
                    ids.index(parent_id) if parent_id in ids else None,
                    dict(span.attributes or {}),
                    tuple((e.name, dict(e.attributes or {})) for e in span.events),
                )
            )
        calls.metrics.extend(meter_provider.log)
        measured.append(calls)
    return measured


#: Attributes of the send_command span that only exist once the reply is in: the
#: library sets them after starting the span, and so does the replay.
REPLY_ATTRIBUTES: frozenset[str] = frozenset({"command.reply"})


def measure_api() -> EventCalls:
    """What a connection's telemetry records for one ``api status`` and its recorded reply."""
    exporter, meter_provider, telemetry = _logged_telemetry()
    parser = ESLParser()
    parser.receive_data(RECORDED_API_STATUS)
    reply = parser.next_event()
    assert isinstance(reply, ApiResponse)

    async def send(data: bytes, label: str) -> ApiResponse:
        return reply

    meter_provider.log.clear()  # instruments created with the telemetry
    # Nothing in it waits: driven by hand, no event loop needed.
    observed = telemetry.observe_command(send, b"api status\n\n", "api status")
    try:
        observed.send(None)
    except StopIteration:
        pass
    else:  # pragma: no cover - observe_command never waits here
        raise RuntimeError("observe_command waited")
    calls = EventCalls("api status", None)
    for span in exporter.get_finished_spans():
        calls.spans.append(SpanCall(span.name, None, dict(span.attributes or {}), ()))
    calls.metrics.extend(meter_provider.log)
    return calls


def bare_api_loop(calls_made: EventCalls, calls: int) -> dict[str, Any]:
    """Replay ``calls`` api round trips' worth of spans and metric calls on the SDK alone."""
    exported_spans = install_sdk()
    tracer = trace.get_tracer("bare-sdk")
    meter = metrics.get_meter("bare-sdk")
    create = {
        "counter": meter.create_counter,
        "up_down_counter": meter.create_up_down_counter,
        "histogram": meter.create_histogram,
        "gauge": meter.create_gauge,
    }
    instruments: dict[tuple[str, str], Any] = {}
    for metric in calls_made.metrics:
        key = (metric.kind, metric.name)
        if key not in instruments:
            instruments[key] = create[metric.kind](metric.name)
    spans = [
        (
            s.name,
            {k: v for k, v in s.attributes.items() if k not in REPLY_ATTRIBUTES},
            [(k, v) for k, v in s.attributes.items() if k in REPLY_ATTRIBUTES],
        )
        for s in calls_made.spans
    ]
    metric_calls = [
        (getattr(instruments[(m.kind, m.name)], _METHOD[m.kind]), m.amount, m.labels)
        for m in calls_made.metrics
    ]
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(calls):
        for name, attributes, late in spans:
            span = tracer.start_span(name, attributes=attributes)
            for late_key, value in late:
                span.set_attribute(late_key, value)
            span.end()
        for method, amount, labels in metric_calls:
            method(amount, labels)
    return {
        "kind": "api",
        **_timed(calls, start, cpu, exported_spans),
        "replayed": {
            "spans_per_call": len(calls_made.spans),
            "attributes_per_call": sum(len(s.attributes) for s in calls_made.spans),
            "metric_calls_per_call": len(calls_made.metrics),
        },
    }


def describe(measured: list[EventCalls]) -> dict[str, Any]:
    """Spans, attributes and metric calls per event, in total and per event type."""
    spans = sum(len(e.spans) for e in measured)
    attributes = sum(len(s.attributes) for e in measured for s in e.spans)
    per_type: dict[str, dict[str, Any]] = {}
    for calls in measured:
        entry = per_type.setdefault(
            calls.event_name, {"events": 0, "spans": Counter[str](), "attributes": 0}
        )
        entry["events"] += 1
        entry["spans"].update(s.name for s in calls.spans)
        entry["attributes"] += sum(len(s.attributes) for s in calls.spans)
    return {
        "events": len(measured),
        "spans_per_event": spans / len(measured),
        "attributes_per_event": attributes / len(measured),
        "attributes_per_span": attributes / spans if spans else 0.0,
        "span_events_per_event": sum(len(s.events) for e in measured for s in e.spans)
        / len(measured),
        "metric_calls_per_event": sum(len(e.metrics) for e in measured) / len(measured),
        "per_event_type": {
            name: {
                "events": entry["events"],
                "spans": dict(entry["spans"]),
                "attributes_per_event": round(entry["attributes"] / entry["events"], 1),
            }
            for name, entry in sorted(per_type.items())
        },
    }


# --- the bare loop -----------------------------------------------------------------


def bare_loop(measured: list[EventCalls], events: int) -> dict[str, Any]:
    """Replay ``events`` events' worth of spans and metric calls on the SDK alone."""
    exported_spans = install_sdk()
    tracer = trace.get_tracer("bare-sdk")
    meter = metrics.get_meter("bare-sdk")
    instruments: dict[tuple[str, str], Any] = {}
    for calls in measured:
        for metric in calls.metrics:
            key = (metric.kind, metric.name)
            if key not in instruments:
                create = {
                    "counter": meter.create_counter,
                    "up_down_counter": meter.create_up_down_counter,
                    "histogram": meter.create_histogram,
                    "gauge": meter.create_gauge,
                }[metric.kind]
                instruments[key] = create(metric.name)
    plan = [
        (
            calls.call_key,
            [(s.name, s.parent, s.attributes, s.events) for s in calls.spans],
            [
                (getattr(instruments[(m.kind, m.name)], _METHOD[m.kind]), m.amount, m.labels)
                for m in calls.metrics
            ],
        )
        for calls in measured
    ]
    # A call's first span roots its trace; its later events are children of that root,
    # as genesis_trio parents them. Resolved once per call, as the library does.
    call_contexts: dict[str | None, Context] = {None: Context()}
    set_in_context = trace.set_span_in_context
    cpu = time.process_time()
    start = time.perf_counter()
    for index in range(events):
        call_key, spans, metric_calls = plan[index % len(plan)]
        context = call_contexts.get(call_key)
        opened: list[trace.Span] = []
        for name, parent, attributes, span_events in spans:
            if parent is None:
                span = tracer.start_span(name, context=context or Context(), attributes=attributes)
                if context is None:
                    context = call_contexts[call_key] = set_in_context(
                        trace.NonRecordingSpan(span.get_span_context())
                    )
            else:
                span = tracer.start_span(
                    name, context=set_in_context(opened[parent]), attributes=attributes
                )
            for event_name, event_attributes in span_events:
                span.add_event(event_name, event_attributes)
            opened.append(span)
        for span in reversed(opened):
            span.end()
        for method, amount, labels in metric_calls:
            method(amount, labels)
    return _timed(events, start, cpu, exported_spans)


def _timed(
    count: int, wall_start: float, cpu_start: float, exported_spans: Callable[[], int]
) -> dict[str, Any]:
    """A sample's figures: ``count`` replayed since ``wall_start`` / ``cpu_start``.

    The clocks are read first: flushing the batch processor is not part of the sample.
    """
    seconds = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    return {
        "count": count,
        "seconds": seconds,
        "rate": count / seconds,
        "cpu": cpu / seconds,
        "spans": exported_spans(),
        "library": "none (OpenTelemetry SDK only)",
    }


_METHOD = {"counter": "add", "up_down_counter": "add", "histogram": "record", "gauge": "set"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--format", dest="event_format", choices=["plain", "json"], default="plain")
    parser.add_argument("--describe", action="store_true", help="print what is replayed and exit")
    parser.add_argument(
        "--api", action="store_true", help="replay what one 'api status' call records"
    )
    parser.add_argument("--calls", type=int, default=5_000, help="api calls (--api)")
    args = parser.parse_args()
    if args.api:
        api = measure_api()
        if args.describe:
            print(
                json.dumps(
                    {
                        "spans": [vars(s) for s in api.spans],
                        "metrics": [vars(m) for m in api.metrics],
                    },
                    indent=2,
                )
            )
            return
        print(json.dumps(bare_api_loop(api, args.calls)), flush=True)
        return
    measured = measure(args.event_format)
    description = describe(measured)
    if args.describe:
        print(json.dumps(description, indent=2))
        return
    result = bare_loop(measured, args.events)
    result["replayed"] = {k: v for k, v in description.items() if k != "per_event_type"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
