"""Recorded FreeSWITCH sessions (plain, json, xml) through the lifecycle processor.

The captures are replayed byte for byte over a loopback socket to a real
Inbound client, so the spans come from the same path production events take.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from genesis_trio import Inbound
from genesis_trio.protocol import EventFormat

from ._replay import capture, replaying
from .conftest import Metrics, Recorded

FORMATS: tuple[EventFormat, ...] = ("plain", "json", "xml")

# From captures/README.txt: the two-call scenario's event counts.
EXPECTED_LIFECYCLE = {
    "freeswitch.channel.create": 4,
    "freeswitch.channel.progress": 2,
    "freeswitch.channel.progress_media": 2,
    "freeswitch.channel.answer": 4,
    "freeswitch.channel.execute": 14,
    "freeswitch.channel.execute_complete": 12,
    "freeswitch.channel.park": 4,
    "freeswitch.channel.unpark": 4,
    "freeswitch.channel.bridge": 1,
    "freeswitch.channel.unbridge": 1,
    "freeswitch.channel.hangup": 4,
    "freeswitch.channel.hangup_complete": 4,
    "freeswitch.channel.destroy": 4,
    "freeswitch.channel.codec": 8,
    "freeswitch.call.update": 2,
}

A_LEG = "b557089b-0790-4637-a8f5-a6632ecf03e6"
C_LEG = "4fb84043-2e31-43fd-9665-1f43ee9dc994"


async def replay(event_format: EventFormat, recorded: Recorded, metrics: Metrics) -> None:
    data = capture(f"inbound_{event_format}_lifecycle")
    async with (
        replaying(data) as (host, port),
        Inbound(
            host,
            port,
            "ClueCon",
            tracer_provider=recorded.provider,
            meter_provider=metrics.provider,
        ) as client,
    ):
        await client.connection.closed.wait()


def lifecycle(recorded: Recorded) -> list[ReadableSpan]:
    return [
        s
        for s in recorded.spans()
        if s.name.startswith(("freeswitch.channel.", "freeswitch.call."))
    ]


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def fingerprints(spans: list[ReadableSpan]) -> Counter[tuple[object, ...]]:
    """Spans with the run's own uuids, stamps and durations replaced by placeholders.

    The three captures are three runs of one scenario: same events, fresh uuids
    (and, once, a different leg's Channel-Call-UUID at hangup).
    """

    def stable(value: object) -> str:
        if isinstance(value, float):
            return "<duration>"
        return re.sub(r"\d{9,}", "<stamp>", UUID.sub("<uuid>", str(value)))

    found: Counter[tuple[object, ...]] = Counter()
    for span in spans:
        attributes = tuple(sorted((k, stable(v)) for k, v in (span.attributes or {}).items()))
        events = tuple(
            (event.name, tuple(sorted((k, stable(v)) for k, v in (event.attributes or {}).items())))
            for event in span.events
        )
        found[(span.name, attributes, events)] += 1
    return found


@pytest.mark.trio
@pytest.mark.parametrize("event_format", FORMATS)
async def test_every_lifecycle_event_becomes_its_span(
    event_format: EventFormat, recorded: Recorded, metrics: Metrics
) -> None:
    await replay(event_format, recorded, metrics)
    assert Counter(s.name for s in lifecycle(recorded)) == EXPECTED_LIFECYCLE


@pytest.mark.trio
async def test_the_three_formats_give_the_same_spans(recorded: Recorded, metrics: Metrics) -> None:
    results = []
    for event_format in FORMATS:
        recorded.exporter.clear()
        await replay(event_format, recorded, metrics)
        results.append(fingerprints(lifecycle(recorded)))
    plain, json, xml = results
    assert sum(plain.values()) == sum(EXPECTED_LIFECYCLE.values())
    assert plain == json
    assert plain == xml


@pytest.mark.trio
async def test_lifecycle_spans_are_children_of_their_process_event(
    recorded: Recorded, metrics: Metrics
) -> None:
    await replay("plain", recorded, metrics)
    by_id = {s.context.span_id: s for s in recorded.spans() if s.context is not None}
    for span in lifecycle(recorded):
        assert span.parent is not None
        parent = by_id[span.parent.span_id]
        assert parent.name == "process_event"
        assert parent.attributes is not None
        assert span.attributes is not None
        assert parent.attributes["event.uuid"] == span.attributes["channel.uuid"]


@pytest.mark.trio
async def test_channel_attributes_and_events(recorded: Recorded, metrics: Metrics) -> None:
    await replay("plain", recorded, metrics)
    for span in lifecycle(recorded):
        assert span.attributes is not None
        assert "channel.uuid" in span.attributes, span.name
        # Loopback legs have no SIP Call-ID: the attribute is absent, not empty.
        assert "sip.call_id" not in span.attributes

    create = next(
        s
        for s in recorded.spans("freeswitch.channel.create")
        if s.attributes and s.attributes["channel.uuid"] == A_LEG
    )
    assert dict(create.attributes or {}) == {
        "channel.uuid": A_LEG,
        "channel.call_uuid": A_LEG,
        "channel.direction": "outbound",
        "channel.name": "loopback/9003-a",
        "channel.destination_number": "9003",
        "channel.context": "default",
        "channel.state": "CS_INIT",
    }

    bridge = recorded.one("freeswitch.channel.bridge")
    assert bridge.attributes is not None
    assert bridge.attributes["bridge.a_uuid"] == A_LEG
    assert bridge.attributes["bridge.b_uuid"] == C_LEG
    assert bridge.attributes["other_leg.uuid"] == C_LEG
    assert bridge.attributes["other_leg.destination_number"] == "9002"
    assert [e.name for e in bridge.events] == ["bridge.established"]
    assert dict(bridge.events[0].attributes or {}) == {
        "bridge.a_uuid": A_LEG,
        "bridge.b_uuid": C_LEG,
    }

    unbridge = recorded.one("freeswitch.channel.unbridge")
    assert unbridge.attributes is not None
    assert unbridge.attributes["bridge.a_uuid"] == A_LEG
    assert unbridge.attributes["bridge.b_uuid"] == C_LEG
    assert [e.name for e in unbridge.events] == ["bridge.torn_down"]

    for hangup in recorded.spans("freeswitch.channel.hangup"):
        assert hangup.attributes is not None
        assert hangup.attributes["hangup.cause"] == "NORMAL_CLEARING"
        assert str(hangup.attributes["channel.state"]).startswith("CS_")
        assert [e.name for e in hangup.events] == ["hangup.cause.normal_clearing"]

    for complete in recorded.spans("freeswitch.channel.hangup_complete"):
        assert complete.attributes is not None
        assert complete.attributes["hangup.cause"] == "NORMAL_CLEARING"
        assert complete.attributes["hangup.cause.q850"] == "16"
        assert [e.name for e in complete.events] == ["call.finalized"]

    destroy = recorded.spans("freeswitch.channel.destroy")
    assert {s.attributes["channel.uuid"] for s in destroy if s.attributes} >= {A_LEG, C_LEG}

    executes = recorded.spans("freeswitch.channel.execute")
    assert all(s.attributes and "application.name" in s.attributes for s in executes)
    # uuid_broadcast runs its playback without an Application-UUID.
    assert any(s.attributes and "application.uuid" in s.attributes for s in executes)
    sleep = next(
        s for s in executes if s.attributes and s.attributes["application.name"] == "sleep"
    )
    assert sleep.attributes is not None
    assert sleep.attributes["application.data"] == "200"
    completes = recorded.spans("freeswitch.channel.execute_complete")
    playback = next(
        s for s in completes if s.attributes and s.attributes["application.name"] == "playback"
    )
    assert playback.attributes is not None
    assert playback.attributes["application.response"] == "FILE PLAYED"
    assert [e.name for e in playback.events] == ["app.playback.done"]

    answer = recorded.spans("freeswitch.channel.answer")[0]
    assert answer.attributes is not None
    assert answer.attributes["answer.state"] == "answered"
    assert "channel.state" in answer.attributes
    assert answer.attributes["channel.read_codec.name"] == "L16"
    assert answer.attributes["channel.write_codec.name"] == "L16"
    media = recorded.spans("freeswitch.channel.progress_media")[0]
    assert media.attributes is not None
    assert media.attributes["answer.state"] == "early"

    codec = recorded.spans("freeswitch.channel.codec")[-1]
    assert codec.attributes is not None
    assert codec.attributes["channel.read_codec.name"] == "L16"
    assert codec.attributes["channel.read_codec.rate"] == 8000
    assert codec.attributes["channel.write_codec.name"] == "L16"

    for update in recorded.spans("freeswitch.call.update"):
        assert [e.name for e in update.events] == ["caller_id.mutated"]


@pytest.mark.trio
async def test_events_without_sip_call_id_are_counted(recorded: Recorded, metrics: Metrics) -> None:
    await replay("plain", recorded, metrics)
    points = metrics.points("genesis.events.without_sip_call_id")
    assert metrics.total("genesis.events.without_sip_call_id") == sum(EXPECTED_LIFECYCLE.values())
    for labels, _ in points:
        assert set(labels) == {"event.name"}
    assert dict(metrics.points("genesis.channel.hangup.causes")[0][0]) == {
        "hangup.cause": "NORMAL_CLEARING"
    }
    assert metrics.total("genesis.channel.hangup.causes") == 4
    # Every created channel was destroyed: the up-down counter is back at zero.
    assert metrics.total("genesis.calls.active") == 0


@pytest.mark.trio
async def test_no_metric_label_carries_a_uuid(recorded: Recorded, metrics: Metrics) -> None:
    await replay("plain", recorded, metrics)
    data = metrics.reader.get_metrics_data()
    assert data is not None
    labels = [
        str(value)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        for value in (point.attributes or {}).values()
    ]
    assert labels
    assert not [label for label in labels if A_LEG in label or C_LEG in label]
    assert not [label for label in labels if len(label) == 36 and label.count("-") == 4]


@pytest.mark.trio
async def test_a_calls_spans_share_one_trace(recorded: Recorded, metrics: Metrics) -> None:
    await replay("plain", recorded, metrics)
    a_leg = [
        s
        for s in lifecycle(recorded)
        if s.attributes and s.attributes.get("channel.call_uuid") == A_LEG
    ]
    assert len(a_leg) > 10
    assert len({s.context.trace_id for s in a_leg if s.context}) == 1
    other = [
        s
        for s in lifecycle(recorded)
        if s.attributes and s.attributes.get("channel.call_uuid") not in (A_LEG, None)
    ]
    assert other
    a_trace = a_leg[0].context.trace_id if a_leg[0].context else 0
    assert all(s.context and s.context.trace_id != a_trace for s in other)


@pytest.mark.trio
@pytest.mark.parametrize(
    ("variable", "still_there", "gone"),
    [
        ("GENESIS_TRACE_ESL_LIFECYCLE", "process_event", "freeswitch.channel.create"),
        ("GENESIS_TRACE_CUSTOM_SUBCLASSES", "freeswitch.channel.create", None),
    ],
)
async def test_env_opt_out_is_read_when_the_connection_starts(
    variable: str,
    still_there: str,
    gone: str | None,
    recorded: Recorded,
    metrics: Metrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, "0")
    await replay("plain", recorded, metrics)
    assert recorded.spans(still_there)
    if gone is not None:
        assert not recorded.spans(gone)
    monkeypatch.setenv(variable, "1")
    recorded.exporter.clear()
    await replay("plain", recorded, metrics)
    assert recorded.spans("freeswitch.channel.create")


@pytest.mark.trio
async def test_a_sampler_that_drops_everything_builds_no_spans(metrics: Metrics) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    await replay("plain", Recorded(provider, exporter), metrics)
    assert exporter.get_finished_spans() == ()
    # The lifecycle metrics do not depend on sampling.
    assert metrics.total("genesis.events.without_sip_call_id") == sum(EXPECTED_LIFECYCLE.values())
    assert metrics.total("genesis.channel.hangup.causes") == 4


@pytest.mark.trio
async def test_call_duration_and_q850_causes_are_recorded_per_hangup(
    recorded: Recorded, metrics: Metrics
) -> None:
    await replay("plain", recorded, metrics)
    durations = metrics.points("genesis.call.duration")
    # One recording per CHANNEL_HANGUP_COMPLETE, labelled by direction and cause only.
    assert (
        sum(count for _, count in durations)
        == EXPECTED_LIFECYCLE["freeswitch.channel.hangup_complete"]
    )
    for labels, _ in durations:
        assert set(labels) == {"direction", "hangup.cause"}
        assert labels["hangup.cause"] == "NORMAL_CLEARING"
    assert metrics.points("genesis.channel.hangup.causes.q850") == [
        ({"hangup.cause.q850": "16", "hangup.cause": "NORMAL_CLEARING"}, 4.0)
    ]
    data = metrics.reader.get_metrics_data()
    assert data is not None
    bounds = {
        metric.name: tuple(point.explicit_bounds)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        if hasattr(point, "explicit_bounds")
    }
    # Seconds, not the SDK's millisecond-sized defaults.
    assert bounds["genesis.call.duration"][:3] == (1.0, 5.0, 10.0)
    assert bounds["genesis.commands.duration"][0] == 0.001
