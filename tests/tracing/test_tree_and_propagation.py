"""format_span_tree and the W3C channel variables."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from genesis_trio import tracing
from genesis_trio.tracing import CallTraces

from .conftest import Recorded

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


def test_tree_shows_nesting_attributes_and_events(recorded: Recorded) -> None:
    tracer = recorded.provider.get_tracer("test")
    with tracer.start_as_current_span("root", attributes={"a": 1}):
        with tracer.start_as_current_span("child", attributes={"event.header.noise": "x"}):
            trace.get_current_span().add_event("something.happened")
        with tracer.start_as_current_span("second"):
            pass
    with tracer.start_as_current_span("other-trace"):
        pass
    text = tracing.format_span_tree(recorded.spans())
    lines = text.splitlines()
    assert lines[0].startswith("trace ")
    assert lines[1].startswith("└─ root")
    assert "[a=1]" in lines[1]
    assert lines[2].startswith("   ├─ child")
    assert "events: something.happened" in lines[2]
    assert "event.header.noise" not in text  # header flattening stays out of the tree
    assert lines[3].startswith("   └─ second")
    assert lines[4].startswith("trace ")
    assert lines[5].startswith("└─ other-trace")
    assert "[a=1]" not in tracing.format_span_tree(recorded.spans(), attributes=False)


def test_trace_variables_carry_the_span_as_w3c_traceparent() -> None:
    context = SpanContext(
        TRACE_ID,
        SPAN_ID,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "opaque")]),
    )
    variables = tracing.trace_variables(NonRecordingSpan(context))
    assert variables == {
        "genesis_traceparent": f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01",
        "genesis_tracestate": "vendor=opaque",
    }
    # FreeSWITCH echoes them back as variable_* headers: the call joins that span.
    headers = {f"variable_{k}": v for k, v in variables.items()}
    parent = CallTraces().parent("call-1", headers)
    assert parent is not None
    carried = trace.get_current_span(parent).get_span_context()
    assert (carried.trace_id, carried.span_id, carried.is_remote) == (TRACE_ID, SPAN_ID, True)


def _variables_for(trace_state: TraceState) -> dict[str, str]:
    context = SpanContext(
        TRACE_ID,
        SPAN_ID,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=trace_state,
    )
    return tracing.trace_variables(NonRecordingSpan(context))


def test_tracestate_is_carried_when_the_originate_encoder_carries_it_exactly() -> None:
    # Serialised as "a=1,b=2": commas are escaped in the originate block (issue 9).
    variables = _variables_for(TraceState([("a", "1"), ("b", "2")]))
    assert variables["genesis_tracestate"] == "a=1,b=2"


def test_tracestate_the_originate_encoder_refuses_is_left_out() -> None:
    # An unbalanced brace cannot be carried in an originate block: dropped, the call goes on.
    variables = _variables_for(TraceState([("a", "x}y")]))
    assert set(variables) == {"genesis_traceparent"}


def test_nothing_to_carry_without_a_valid_span() -> None:
    assert tracing.trace_variables() == {}
    assert CallTraces().parent("call-1", {"variable_genesis_traceparent": "garbage"}) is None


def test_call_memory_is_released_when_the_last_leg_is_destroyed() -> None:
    calls = CallTraces(max_calls=2)
    context = SpanContext(TRACE_ID, SPAN_ID, is_remote=False)
    calls.root("a", context)
    calls.leg_created("a")
    calls.leg_created("a")
    calls.leg_destroyed("a")
    assert calls.parent("a", {}) is not None
    calls.leg_destroyed("a")
    assert len(calls) == 0
    # The event FreeSWITCH fires after CHANNEL_DESTROY still joins the call's trace,
    # without bringing the call back.
    assert calls.parent("a", {}) is not None
    calls.root("a", context)
    assert len(calls) == 0
    for key in ("b", "c", "d"):
        calls.root(key, context)
    assert len(calls) == 2  # bounded: the oldest call is forgotten first
    assert calls.parent("b", {}) is None
