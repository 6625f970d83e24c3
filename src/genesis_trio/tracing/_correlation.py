"""One trace per call: W3C context carried in channel variables, or Channel-Call-UUID.

The rule, in order, for the parent of a channel event's spans:

1. The event carries ``variable_genesis_traceparent`` (set by our originate
   from the ``channel.create`` span): the call joins the trace that created it.
2. Otherwise the call is known by its ``Channel-Call-UUID`` (``Unique-ID``
   when absent): its first span became the root of the call's own trace and
   every later span of that call is a child of it.

``sip.call_id`` stays on every span either way: it is the join key with
other systems, which cannot know our trace ids.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .._exceptions import LocalProtocolError
from ..protocol._encoding import originate_variables
from . import _names as n

__all__ = ["CallTraces", "trace_variables"]

_W3C: Final = TraceContextTextMapPropagator()
_TRACEPARENT_HEADER: Final = "variable_" + n.TRACEPARENT_VARIABLE
_TRACESTATE_HEADER: Final = "variable_" + n.TRACESTATE_VARIABLE


def trace_variables(span: Span | None = None) -> dict[str, str]:
    """The channel variables that carry ``span`` (default: the current span) as W3C context.

    Empty when there is nothing valid to carry (no SDK, no span). ``tracestate``
    is only included when it is safe inside an originate variable block.
    """
    target = span if span is not None else trace.get_current_span()
    if not target.get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(target))
    variables: dict[str, str] = {}
    traceparent = carrier.get("traceparent")
    if traceparent:
        variables[n.TRACEPARENT_VARIABLE] = traceparent
    tracestate = carrier.get("tracestate")
    if tracestate and _carried_exactly(tracestate):
        variables[n.TRACESTATE_VARIABLE] = tracestate
    return variables


def _carried_exactly(value: str) -> bool:
    # tracestate comes from upstream (an HTTP header): one the originate encoder
    # would refuse is dropped rather than failing the call it rides on.
    try:
        originate_variables({n.TRACESTATE_VARIABLE: value})
    except LocalProtocolError:
        return False
    return True


def context_from_headers(headers: Mapping[str, str]) -> Context | None:
    """The remote parent an event carries in its genesis_traceparent variable, if any."""
    traceparent = headers.get(_TRACEPARENT_HEADER)
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    tracestate = headers.get(_TRACESTATE_HEADER)
    if tracestate:
        carrier["tracestate"] = tracestate
    extracted = _W3C.extract(carrier)
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


class CallTraces:
    """Per-connection memory of each call's trace parent, bounded.

    An entry is dropped when the last leg we saw created for the call is
    destroyed, and the oldest entries go first past ``max_calls`` (a consumer
    that joined mid-call never sees the creates that would balance its
    destroys).

    FreeSWITCH fires one event after ``CHANNEL_DESTROY`` (the ``CHANNEL_STATE``
    into ``CS_DESTROY``). So that it neither starts a trace of its own nor
    brings the call back for good (one entry per call, kept until
    ``max_calls``), the parents of the last ``max_ended`` ended calls are kept
    aside, read-only.
    """

    def __init__(self, max_calls: int = 10_000, max_ended: int = 256) -> None:
        # call key -> (the traceparent it came from, or None for a self-rooted call; parent)
        self._parents: OrderedDict[str, tuple[str | None, Context]] = OrderedDict()
        self._ended: OrderedDict[str, Context] = OrderedDict()
        self._legs: dict[str, int] = {}
        self._max_calls = max_calls
        self._max_ended = max_ended

    def __len__(self) -> int:
        return len(self._parents)

    def parent(self, call_key: str, headers: Mapping[str, str]) -> Context | None:
        """The context to parent this event's spans on, or None: the event starts the trace.

        A carried traceparent wins over what we knew: FreeSWITCH fires a few
        events (CHANNEL_OUTGOING, ...) before the originate variables are set,
        and from the first event that has them on, the call joins its origin.
        """
        known = self._parents.get(call_key)
        if known is None:
            ended = self._ended.get(call_key)
            if ended is not None:
                return ended
        traceparent = headers.get(_TRACEPARENT_HEADER)
        if traceparent:
            if known is not None and known[0] == traceparent:
                return known[1]
            carried = context_from_headers(headers)
            if carried is not None:
                self._remember(call_key, carried, traceparent)
                return carried
        return known[1] if known is not None else None

    def root(self, call_key: str, span_context: SpanContext) -> None:
        """Make the span that started this call's trace the parent of its later spans."""
        if call_key not in self._parents and call_key not in self._ended:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
            self._remember(call_key, parent, None)

    def bind(self, call_key: str, parent: Context) -> None:
        self._remember(call_key, parent, None)

    def leg_created(self, call_key: str) -> None:
        self._legs[call_key] = self._legs.get(call_key, 0) + 1

    def leg_destroyed(self, call_key: str) -> None:
        remaining = self._legs.get(call_key, 0) - 1
        if remaining > 0:
            self._legs[call_key] = remaining
            return
        self._legs.pop(call_key, None)
        known = self._parents.pop(call_key, None)
        if known is not None:
            self._ended[call_key] = known[1]
            while len(self._ended) > self._max_ended:
                self._ended.popitem(last=False)

    def _remember(self, call_key: str, parent: Context, traceparent: str | None) -> None:
        self._parents[call_key] = (traceparent, parent)
        self._parents.move_to_end(call_key)
        while len(self._parents) > self._max_calls:
            oldest, _ = self._parents.popitem(last=False)
            self._legs.pop(oldest, None)
