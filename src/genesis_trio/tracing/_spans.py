"""The span handles the operation helpers yield: attributes, events, outcome on exit.

``__exit__`` is synchronous: the span is complete before a cancellation or an
exception continues up the stack, and nothing is swallowed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import Token
from types import TracebackType
from typing import Final, Self, cast

import anyio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .._outcome import _leaves, is_cancellation
from . import _names as n
from ._correlation import trace_variables
from ._metrics import Instruments, connection_error_label
from ._outcomes import (
    RingGroupResult,
    WaitResult,
    classify_ring_group,
    classify_wait,
    error_text,
)

__all__ = [
    "SILENT_TRACER",
    "ConnectSpan",
    "DtmfSpan",
    "OperationSpan",
    "OutboundConnectionSpan",
    "QueueWaitSpan",
    "RingGroupSpan",
    "SendmsgSpan",
    "SuccessSpan",
    "WaitSpan",
]


#: The tracer of an operation on a connection that decided, when it opened, that
#: nothing records: its spans start nothing and leave the current context alone.
SILENT_TRACER: Final = trace.NoOpTracer()

# ``_token`` of a span entered with SILENT_TRACER (no context was attached).
_SILENT_TOKEN: Final = object()


class OperationSpan:
    """The handle a helper yields: set attributes, add events, record an outcome.

    Everything is a no-op when the span is not recording, so call sites need
    no ``if`` of their own.
    """

    operation: str | None = None

    def __init__(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue | None],
        *,
        tracer: trace.Tracer,
        instruments: Instruments | None = None,
        operation: str | None = None,
    ) -> None:
        self.name = name
        self._tracer = tracer
        self._instruments = instruments
        self._initial = attributes
        self._token: Token[Context] | object | None = None
        self._started = 0.0
        self._silent = False
        self.operation = operation
        self.span: Span = trace.INVALID_SPAN
        self.recording = False

    # --- used by callers ------------------------------------------------------
    def set(self, key: str, value: AttributeValue | None) -> None:
        """Set an attribute (None is skipped: absent is clearer than "None")."""
        if self.recording and value is not None:
            self.span.set_attribute(key, value)

    def add_event(self, name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
        if self.recording:
            self.span.add_event(name, attributes=attributes)

    def trace_variables(self) -> dict[str, str]:
        """Channel variables carrying this span's W3C context (for originate).

        Put them in the originate ``{...}`` block; FreeSWITCH then repeats them
        on every event of the new channel, and its ``freeswitch.channel.*``
        spans become descendants of this span.
        """
        return trace_variables(self.span)

    @property
    def elapsed(self) -> float:
        """Seconds since the block began (0.0 for a span that records nothing)."""
        if self._silent:
            return 0.0
        return _now() - self._started

    # --- context manager ---------------------------------------------------------
    def __enter__(self) -> Self:
        if self._tracer is SILENT_TRACER and self._instruments is None:
            # Nothing would record: the outcome is still decided on exit (callers read it).
            self._silent = True
            self._token = _SILENT_TOKEN
            return self
        self._started = _now()
        span = self._tracer.start_span(self.name)
        self.span = span
        self.recording = span.is_recording()
        if self.recording:
            span.set_attributes({k: v for k, v in self._initial.items() if v is not None})
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._token
        if token is None:
            return
        if token is _SILENT_TOKEN:
            self._token = None
            self._conclude(exc)
            return
        try:
            self._conclude(exc)
            if self.recording:
                self._finish(exc)
                if exc is not None and not is_cancellation(exc):
                    self._record_failure(exc)
            self._record_metrics(exc)
        finally:
            self.span.end()
            otel_context.detach(cast("Token[Context]", token))
            self._token = None

    def close(self) -> None:
        """End the span now, as a successful exit would (later ``__exit__`` is a no-op).

        For spans that cover only the first part of a longer block (``consumer.start``).
        """
        self.__exit__(None, None, None)

    # --- overridden by specialised spans ----------------------------------------
    def _conclude(self, exc: BaseException | None) -> None:
        """Decide the outcome (always, recording or not: callers may read it)."""

    def _finish(self, exc: BaseException | None) -> None:
        """Write outcome attributes (only called while recording)."""

    def _record_failure(self, exc: BaseException) -> None:
        """An exception other than a cancellation ended the block (only while recording)."""
        self.span.record_exception(exc)
        self.span.set_status(Status(StatusCode.ERROR, error_text(exc)))

    def _result_label(self, exc: BaseException | None) -> str:
        if exc is None:
            return "success"
        if is_cancellation(exc):
            return "cancelled"
        if all(isinstance(leaf, TimeoutError) for leaf in _leaves(exc)):
            return "timeout"  # the operation's own timeout= (OperationTimeout)
        return "error"

    def _record_metrics(self, exc: BaseException | None) -> None:
        instruments = self._instruments
        if instruments is None:
            return
        result = self._result_label(exc)
        if result == WaitResult.TIMEOUT:
            instruments.timeouts.add(1, {"operation": self.operation or self.name})
        if self.operation is None:
            return
        labels = {"operation": self.operation, "result": result}
        instruments.channel_operations.add(1, labels)
        instruments.channel_operation_duration.record(self.elapsed, labels)


def _now() -> float:
    """The event loop's clock (the one deadlines use), or monotonic time outside a loop."""
    try:
        return anyio.current_time()
    except Exception:
        return time.monotonic()


class SuccessSpan(OperationSpan):
    """Records ``<success_key>`` (and optionally a duration) from how the block ended."""

    def __init__(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue | None],
        *,
        success_key: str,
        duration_key: str | None = None,
        tracer: trace.Tracer,
        instruments: Instruments | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(
            name, attributes, tracer=tracer, instruments=instruments, operation=operation
        )
        self._success_key = success_key
        self._duration_key = duration_key

    def _finish(self, exc: BaseException | None) -> None:
        self.span.set_attribute(self._success_key, exc is None)
        if self._duration_key is not None:
            self.span.set_attribute(self._duration_key, self.elapsed)


class WaitSpan(OperationSpan):
    """``channel.wait``: writes ``wait.result`` on exit.

    Without an exception the result is ``matched`` unless the operation said
    otherwise (``span.set_result(WaitResult.TIMEOUT)`` after its own
    ``move_on_after`` expired); with one it is derived from the exception.
    """

    _explicit: WaitResult | None = None
    result: WaitResult | None = None

    def set_result(self, result: WaitResult) -> None:
        self._explicit = result

    def _outcome(self, exc: BaseException | None) -> WaitResult:
        if exc is None and self._explicit is not None:
            return self._explicit
        return classify_wait(exc)

    def _conclude(self, exc: BaseException | None) -> None:
        self.result = self._outcome(exc)

    def _finish(self, exc: BaseException | None) -> None:
        self.span.set_attribute(n.WAIT_RESULT, self._outcome(exc).value)

    def _result_label(self, exc: BaseException | None) -> str:
        return self._outcome(exc).value


class RingGroupSpan(OperationSpan):
    """``ring_group.ring``: result, duration, the answered leg, the error if any."""

    _explicit: RingGroupResult | None = None
    _answered = False
    result: RingGroupResult | None = None

    def set_result(self, result: RingGroupResult) -> None:
        self._explicit = result

    def answered(self, channel_uuid: str, dial_path: str) -> None:
        """Call when a leg answered: sets the answered_* attributes and the result."""
        self._answered = True
        self.set(n.RING_GROUP_ANSWERED_UUID, channel_uuid)
        self.set(n.RING_GROUP_ANSWERED_DIAL_PATH, dial_path)

    def balanced(self, balanced: bool) -> None:
        self.set(n.RING_GROUP_BALANCED, balanced)

    def _outcome(self, exc: BaseException | None) -> RingGroupResult:
        if exc is None and self._explicit is not None:
            return self._explicit
        return classify_ring_group(exc, answered=self._answered)

    def _conclude(self, exc: BaseException | None) -> None:
        self.result = self._outcome(exc)

    def _finish(self, exc: BaseException | None) -> None:
        outcome = self._outcome(exc)
        self.span.set_attribute(n.RING_GROUP_RESULT, outcome.value)
        self.span.set_attribute(n.RING_GROUP_DURATION, self.elapsed)
        if outcome is RingGroupResult.ERROR and exc is not None:
            self.span.set_attribute(n.RING_GROUP_ERROR, error_text(exc))

    def _record_metrics(self, exc: BaseException | None) -> None:
        if self._instruments is None:
            return
        mode = self._initial.get(n.RING_GROUP_MODE)
        labels = {"mode": str(mode), "result": self._outcome(exc).value}
        self._instruments.ring_group_results.add(1, labels)
        self._instruments.ring_group_duration.record(self.elapsed, labels)


class SendmsgSpan(OperationSpan):
    """``session.sendmsg``: counted per application in ``genesis.session.commands``."""

    def _record_metrics(self, exc: BaseException | None) -> None:
        instruments = self._instruments
        if instruments is None:
            return
        application = self._initial.get(n.APPLICATION_NAME)
        labels = {n.APPLICATION_NAME: str(application), "result": self._result_label(exc)}
        instruments.session_commands.add(1, labels)
        instruments.session_command_duration.record(self.elapsed, labels)


class OutboundConnectionSpan(OperationSpan):
    """``outbound_handle_connection``: a call that failed is a connection error."""

    def _record_metrics(self, exc: BaseException | None) -> None:
        instruments = self._instruments
        if instruments is None or exc is None or is_cancellation(exc):
            return
        failed = {type(leaf).__name__ for leaf in _leaves(exc) if not is_cancellation(leaf)}
        error = failed.pop() if len(failed) == 1 else "multiple"
        instruments.connections_errors.add(1, {"type": "outbound", "error": error})


class ConnectSpan(OperationSpan):
    """``inbound_connect``: a failed attempt counts in ``genesis.connections.errors``."""

    def _record_metrics(self, exc: BaseException | None) -> None:
        instruments = self._instruments
        if instruments is None or exc is None or is_cancellation(exc):
            return
        error = connection_error_label(exc)
        if error == "connection_lost":  # never connected: refused, or closed before auth
            error = "connect_failed"
        instruments.connections_errors.add(1, {"type": "inbound", "error": error})
        if error == "timeout":
            instruments.timeouts.add(1, {"operation": "connect"})


class DtmfSpan(OperationSpan):
    """``channel.dtmf.received``: ``dtmf.handled`` is true when the handler returned."""

    _handled: bool | None = None

    def handled(self, handled: bool) -> None:
        self._handled = handled

    def _finish(self, exc: BaseException | None) -> None:
        handled = self._handled if self._handled is not None else exc is None
        self.span.set_attribute(n.DTMF_HANDLED, handled and exc is None)


class QueueWaitSpan(OperationSpan):
    """``queue.wait_and_acquire``: one waiter, from joining the line to holding a slot.

    Writes ``queue.result`` on exit: ``acquired`` without an exception, ``timeout`` for the
    wait's own timeout exception, ``cancelled``, or ``error``. A timeout sets the status to
    ERROR without recording an exception (the wait ran out, nothing failed); an error records
    it. With metrics: ``genesis.queue.waiting``, ``genesis.queue.wait_duration`` (``result``),
    ``genesis.queue.operations`` (``op=acquire``) and ``genesis.timeouts``
    (``operation=queue.wait``).
    """

    result: str | None = None

    def __init__(
        self,
        attributes: Mapping[str, AttributeValue | None],
        *,
        timeout_error: type[BaseException],
        tracer: trace.Tracer,
        instruments: Instruments | None = None,
    ) -> None:
        super().__init__(
            n.QUEUE_WAIT_AND_ACQUIRE, attributes, tracer=tracer, instruments=instruments
        )
        self._timeout_error = timeout_error

    def joined(self, depth: int) -> None:
        """Waiters in line, this one included, when it joined (``queue.depth``)."""
        self.set(n.QUEUE_DEPTH, depth)

    def requeued(self) -> None:
        """It lost its place in line and joined again at the tail (a span event)."""
        self.add_event(n.EVENT_QUEUE_REQUEUED)

    def __enter__(self) -> Self:
        entered = super().__enter__()
        if self._instruments is not None:
            self._instruments.queue_waiting.add(1)
        return entered

    def _conclude(self, exc: BaseException | None) -> None:
        if exc is None:
            self.result = "acquired"
        elif isinstance(exc, self._timeout_error):
            self.result = "timeout"
        elif is_cancellation(exc):
            self.result = "cancelled"
        else:
            self.result = "error"

    def _finish(self, exc: BaseException | None) -> None:
        self.span.set_attribute(n.QUEUE_RESULT, self.result or "error")

    def _record_failure(self, exc: BaseException) -> None:
        if self.result == "error":
            self.span.record_exception(exc)
        self.span.set_status(Status(StatusCode.ERROR, str(exc)))

    def _record_metrics(self, exc: BaseException | None) -> None:
        instruments = self._instruments
        if instruments is None:
            return
        result = self.result or "error"
        # No queue id label: ids are the app's and may be per call or per customer.
        instruments.queue_waiting.add(-1)
        instruments.queue_wait_duration.record(self.elapsed, {"result": result})
        if result == "acquired":
            instruments.queue_operations.add(1, {"op": "acquire"})
        elif result == "timeout":
            instruments.timeouts.add(1, {"operation": "queue.wait"})
