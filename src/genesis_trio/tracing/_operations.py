"""Spans around operations: one context manager per span of the specification.

Each helper opens its span as a child of the caller's current span, makes it
current for the duration of the ``with`` block (so commands sent inside become
its children), and on exit writes the outcome, records a failure, and ends the
span. ``__exit__`` is synchronous: the span is complete before a cancellation
or an exception continues up the stack, and nothing is swallowed.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self, TypedDict

import anyio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .._exceptions import ChannelHangup, ConnectionLost
from .._outcome import _leaves
from . import _names as n
from ._correlation import trace_variables
from ._metrics import Instruments, instruments_for
from ._providers import get_tracer

if TYPE_CHECKING:
    from .._stream import ESLConnection

__all__ = [
    "OperationSpan",
    "RingGroupResult",
    "RingGroupSpan",
    "WaitResult",
    "WaitSpan",
]

_ERROR_TEXT_LIMIT: Final = 200


class WaitResult(enum.StrEnum):
    """``wait.result``: how a wait (or another cancel-scoped operation) ended."""

    MATCHED = "matched"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    HANGUP = "hangup"
    CONNECTION_LOST = "connection_lost"
    ERROR = "error"


class RingGroupResult(enum.StrEnum):
    """``ring_group.result``."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    CANCELLED = "cancelled"
    ERROR = "error"


def _is_cancellation(exc: BaseException) -> bool:
    try:
        cancelled = anyio.get_cancelled_exc_class()
    except Exception:  # outside an event loop: nothing can be a cancellation
        return False
    return all(isinstance(leaf, cancelled) for leaf in _leaves(exc))


def classify_wait(exc: BaseException | None) -> WaitResult:
    """Map how a cancel-scoped operation ended to a :class:`WaitResult`.

    A cancellation from the caller's enclosing scope is ``cancelled``; the
    operation's own deadline is ``timeout`` (raised as TimeoutError, or set
    explicitly with :meth:`WaitSpan.set_result` after ``move_on_after``).
    """
    if exc is None:
        return WaitResult.MATCHED
    if _is_cancellation(exc):
        return WaitResult.CANCELLED
    leaves = _leaves(exc)
    if any(isinstance(leaf, ChannelHangup) for leaf in leaves):
        return WaitResult.HANGUP
    if any(isinstance(leaf, ConnectionLost) for leaf in leaves):
        return WaitResult.CONNECTION_LOST
    if any(isinstance(leaf, TimeoutError) for leaf in leaves):
        return WaitResult.TIMEOUT
    return WaitResult.ERROR


class _Recorders(TypedDict):
    """The ``tracer=`` / ``instruments=`` arguments of a span, resolved once."""

    tracer: trace.Tracer
    instruments: Instruments | None


def _resolve(
    connection: ESLConnection | None,
    tracer_provider: trace.TracerProvider | None,
    meter_provider: MeterProvider | None,
) -> _Recorders:
    telemetry = getattr(connection, "telemetry", None) if connection is not None else None
    if telemetry is not None:
        tracer = telemetry.tracer or get_tracer(tracer_provider)
        return _Recorders(tracer=tracer, instruments=telemetry.instruments)
    return _Recorders(
        tracer=get_tracer(tracer_provider), instruments=instruments_for(meter_provider)
    )


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
        self._token: Token[Context] | None = None
        self._started = 0.0
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
        return _now() - self._started

    # --- context manager ---------------------------------------------------------
    def __enter__(self) -> Self:
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
        if self._token is None:
            return
        try:
            self._conclude(exc)
            if self.recording:
                self._finish(exc)
                if exc is not None and not _is_cancellation(exc):
                    self.span.record_exception(exc)
                    self.span.set_status(Status(StatusCode.ERROR, _error_text(exc)))
            self._record_metrics(exc)
        finally:
            self.span.end()
            otel_context.detach(self._token)
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

    def _result_label(self, exc: BaseException | None) -> str:
        if exc is None:
            return "success"
        return "cancelled" if _is_cancellation(exc) else "error"

    def _record_metrics(self, exc: BaseException | None) -> None:
        if self._instruments is None or self.operation is None:
            return
        labels = {"operation": self.operation, "result": self._result_label(exc)}
        self._instruments.channel_operations.add(1, labels)
        self._instruments.channel_operation_duration.record(self.elapsed, labels)


def _now() -> float:
    """The event loop's clock (the one deadlines use), or monotonic time outside a loop."""
    try:
        return anyio.current_time()
    except Exception:
        return time.monotonic()


def _error_text(exc: BaseException) -> str:
    """``Type: message`` of the exception, or of each leaf of an exception group."""
    text = "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in _leaves(exc))
    return text[:_ERROR_TEXT_LIMIT]


class _SuccessSpan(OperationSpan):
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
        if exc is None:
            if self._explicit is not None:
                return self._explicit
            return RingGroupResult.ANSWERED if self._answered else RingGroupResult.NO_ANSWER
        if _is_cancellation(exc):
            return RingGroupResult.CANCELLED
        if all(isinstance(leaf, TimeoutError) for leaf in _leaves(exc)):
            return RingGroupResult.NO_ANSWER
        return RingGroupResult.ERROR

    def _conclude(self, exc: BaseException | None) -> None:
        self.result = self._outcome(exc)

    def _finish(self, exc: BaseException | None) -> None:
        outcome = self._outcome(exc)
        self.span.set_attribute(n.RING_GROUP_RESULT, outcome.value)
        self.span.set_attribute(n.RING_GROUP_DURATION, self.elapsed)
        if outcome is RingGroupResult.ERROR and exc is not None:
            self.span.set_attribute(n.RING_GROUP_ERROR, _error_text(exc))

    def _record_metrics(self, exc: BaseException | None) -> None:
        if self._instruments is None:
            return
        mode = self._initial.get(n.RING_GROUP_MODE)
        result = self._outcome(exc)
        self._instruments.ring_group_results.add(1, {"mode": str(mode), "result": result.value})


class DtmfSpan(OperationSpan):
    """``channel.dtmf.received``: ``dtmf.handled`` is true when the handler returned."""

    _handled: bool | None = None

    def handled(self, handled: bool) -> None:
        self._handled = handled

    def _finish(self, exc: BaseException | None) -> None:
        handled = self._handled if self._handled is not None else exc is None
        self.span.set_attribute(n.DTMF_HANDLED, handled and exc is None)


# --- the helpers ---------------------------------------------------------------------
# Every helper accepts ``connection=`` (its telemetry decides the tracer and
# meter, so a tracer_provider given to Inbound/Outbound reaches these spans)
# or explicit providers; with neither, the global providers are used.


def channel_create(
    dial_path: str,
    *,
    has_variables: bool,
    channel_uuid: str | None = None,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    """``channel.create``. Call ``span.set(CHANNEL_UUID, uuid)`` once known, and
    merge ``span.trace_variables()`` into the originate variables."""
    return OperationSpan(
        n.CHANNEL_CREATE,
        {
            n.CHANNEL_DIAL_PATH: dial_path,
            n.CHANNEL_UUID: channel_uuid,
            n.CHANNEL_HAS_VARIABLES: has_variables,
        },
        operation="create",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_answer(
    channel_uuid: str,
    *,
    state: str | None = None,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    """``channel.answer``: answer.success / answer.duration are written on exit."""
    return _SuccessSpan(
        n.CHANNEL_ANSWER,
        {n.CHANNEL_UUID: channel_uuid, n.CHANNEL_STATE: state},
        success_key=n.CHANNEL_ANSWER_SUCCESS,
        duration_key=n.CHANNEL_ANSWER_DURATION,
        operation="answer",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_hangup(
    channel_uuid: str,
    *,
    cause: str,
    state: str | None = None,
    call_duration: float | None = None,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    """``channel.hangup`` (``span.set(CALL_DURATION, s)`` if only known later)."""
    return OperationSpan(
        n.CHANNEL_HANGUP,
        {
            n.CHANNEL_UUID: channel_uuid,
            n.CHANNEL_STATE: state,
            n.HANGUP_CAUSE: cause,
            n.CALL_DURATION: call_duration,
        },
        operation="hangup",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_bridge(
    channel_uuid: str,
    other_uuid: str,
    *,
    state: str | None = None,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    """``channel.bridge``: channel.bridge.success is written on exit."""
    return _SuccessSpan(
        n.CHANNEL_BRIDGE,
        {n.CHANNEL_UUID: channel_uuid, n.CHANNEL_OTHER_UUID: other_uuid, n.CHANNEL_STATE: state},
        success_key=n.CHANNEL_BRIDGE_SUCCESS,
        operation="bridge",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_playback(
    channel_uuid: str,
    path: str,
    *,
    block: bool,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    return OperationSpan(
        n.CHANNEL_PLAYBACK,
        {n.CHANNEL_UUID: channel_uuid, n.PLAYBACK_PATH: path, n.PLAYBACK_BLOCK: block},
        operation="playback",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_say(
    channel_uuid: str,
    *,
    module: str,
    kind: str,
    method: str,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    return OperationSpan(
        n.CHANNEL_SAY,
        {
            n.CHANNEL_UUID: channel_uuid,
            n.SAY_MODULE: module,
            n.SAY_KIND: kind,
            n.SAY_METHOD: method,
        },
        operation="say",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_play_and_get_digits(
    channel_uuid: str,
    file: str,
    *,
    tries: int,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    return OperationSpan(
        n.CHANNEL_PLAY_AND_GET_DIGITS,
        {n.CHANNEL_UUID: channel_uuid, n.PAGD_FILE: file, n.PAGD_TRIES: tries},
        operation="play_and_get_digits",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_park(
    channel_uuid: str,
    *,
    state: str | None = None,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    return OperationSpan(
        n.CHANNEL_PARK,
        {n.CHANNEL_UUID: channel_uuid, n.CHANNEL_STATE: state},
        operation="park",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_wait(
    channel_uuid: str,
    *,
    target: str,
    timeout: float | None,
    wait_type: str,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> WaitSpan:
    """``channel.wait``; ``wait.result`` is written on exit (see :class:`WaitSpan`)."""
    return WaitSpan(
        n.CHANNEL_WAIT,
        {
            n.CHANNEL_UUID: channel_uuid,
            n.WAIT_TARGET: target,
            n.WAIT_TIMEOUT: timeout,
            n.WAIT_TYPE: wait_type,
        },
        operation="wait",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def channel_dtmf_received(
    channel_uuid: str,
    digit: str,
    *,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> DtmfSpan:
    """``channel.dtmf.received`` around the DTMF handler call."""
    return DtmfSpan(
        n.CHANNEL_DTMF_RECEIVED,
        {n.CHANNEL_UUID: channel_uuid, n.DTMF_DIGIT: digit},
        operation="dtmf",
        **_resolve(connection, tracer_provider, meter_provider),
    )


def ring_group_ring(
    *,
    mode: str,
    size: int,
    timeout: float | None,
    has_balancer: bool,
    has_variables: bool,
    balanced: bool | None = None,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> RingGroupSpan:
    """``ring_group.ring``; result / duration / error are written on exit."""
    return RingGroupSpan(
        n.RING_GROUP_RING,
        {
            n.RING_GROUP_MODE: mode,
            n.RING_GROUP_SIZE: size,
            n.RING_GROUP_TIMEOUT: timeout,
            n.RING_GROUP_HAS_BALANCER: has_balancer,
            n.RING_GROUP_HAS_VARIABLES: has_variables,
            n.RING_GROUP_BALANCED: balanced,
        },
        **_resolve(connection, tracer_provider, meter_provider),
    )


def session_sendmsg(
    channel_uuid: str,
    *,
    application: str,
    application_uuid: str,
    block: bool,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> OperationSpan:
    """``session.sendmsg``; open :func:`session_await_complete` inside it when blocking."""
    return OperationSpan(
        n.SESSION_SENDMSG,
        {
            n.CHANNEL_UUID: channel_uuid,
            n.APPLICATION_NAME: application,
            n.APPLICATION_UUID: application_uuid,
            n.APPLICATION_BLOCK: block,
        },
        tracer=_resolve(connection, tracer_provider, None)["tracer"],
    )


def session_await_complete(
    channel_uuid: str,
    application_uuid: str,
    *,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> WaitSpan:
    """``session.await_complete`` (also carries ``wait.result``)."""
    return WaitSpan(
        n.SESSION_AWAIT_COMPLETE,
        {n.CHANNEL_UUID: channel_uuid, n.APPLICATION_UUID: application_uuid},
        tracer=_resolve(connection, tracer_provider, None)["tracer"],
    )


def _consumer_span(
    name: str, host: str, port: int, tracer_provider: trace.TracerProvider | None
) -> OperationSpan:
    return OperationSpan(
        name, {n.CONSUMER_HOST: host, n.CONSUMER_PORT: port}, tracer=get_tracer(tracer_provider)
    )


def consumer_start(
    host: str, port: int, *, tracer_provider: trace.TracerProvider | None = None
) -> OperationSpan:
    return _consumer_span(n.CONSUMER_START, host, port, tracer_provider)


def consumer_stop(
    host: str, port: int, *, tracer_provider: trace.TracerProvider | None = None
) -> OperationSpan:
    return _consumer_span(n.CONSUMER_STOP, host, port, tracer_provider)


def queue_wait_and_acquire(
    queue_id: str,
    item_id: str,
    *,
    depth: int | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> WaitSpan:
    """``queue.wait_and_acquire``; ``span.set(QUEUE_DEPTH, n)`` if only known later."""
    return WaitSpan(
        n.QUEUE_WAIT_AND_ACQUIRE,
        {n.QUEUE_ID: queue_id, n.QUEUE_ITEM_ID: item_id, n.QUEUE_DEPTH: depth},
        tracer=get_tracer(tracer_provider),
    )


def inbound_connect(
    host: str, port: int, *, tracer_provider: trace.TracerProvider | None = None
) -> OperationSpan:
    """``inbound_connect``: the peer is the FreeSWITCH we dial."""
    return OperationSpan(
        n.INBOUND_CONNECT,
        {n.NET_PEER_NAME: host, n.NET_PEER_PORT: port},
        tracer=get_tracer(tracer_provider),
    )


def outbound_handle_connection(
    peer_host: str,
    peer_port: int,
    *,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> OperationSpan:
    """``outbound_handle_connection``: the peer is FreeSWITCH's side of the accepted
    socket (``stream.extra(anyio.abc.SocketAttribute.remote_address)``), not our
    listening address."""
    return OperationSpan(
        n.OUTBOUND_HANDLE_CONNECTION,
        {n.NET_PEER_NAME: peer_host, n.NET_PEER_PORT: peer_port},
        tracer=_resolve(connection, tracer_provider, None)["tracer"],
    )
