"""OpenTelemetry tracing and metrics for genesis_trio (API only; the SDK is the user's).

Operation helpers
=================
Each returns a context manager; entering it starts the span as a child of the
caller's current span and makes it current; leaving it writes the outcome and
ends the span *before* an exception or a cancellation continues (nothing is
swallowed). The yielded handle is an :class:`OperationSpan` whose methods are
no-ops when nothing records::

    span.set(key, value)          # an attribute (None is skipped)
    span.add_event(name, attrs)
    span.trace_variables()        # {"genesis_traceparent": ...} for originate
    span.close()                  # end early (later __exit__ is a no-op)

Every helper takes ``connection: ESLConnection | None`` (its ``telemetry``
picks the tracer and meter, so providers given to Inbound reach the span) and
``tracer_provider=`` (and, for channel operations, ``meter_provider=``); with
neither, the global providers are read at that moment.

    channel_create(dial_path, *, has_variables, channel_uuid=None)      -> OperationSpan
        # span.set(CHANNEL_UUID, uuid); originate with span.trace_variables() merged
        # into the {...} variables so the new channel's spans join this trace.
    channel_answer(channel_uuid, *, state=None)      # writes answer.success/.duration
    channel_hangup(channel_uuid, *, cause, state=None, call_duration=None)
    channel_bridge(channel_uuid, other_uuid, *, state=None)  # writes bridge.success
    channel_playback(channel_uuid, path, *, block)
    channel_say(channel_uuid, *, module, kind, method)
    channel_play_and_get_digits(channel_uuid, file, *, tries)
    channel_park(channel_uuid, *, state=None)
    channel_wait(channel_uuid, *, target, timeout, wait_type)           -> WaitSpan
        # wait.result: no exception -> "matched", or span.set_result(WaitResult.TIMEOUT)
        # after your own move_on_after expired; exceptions map: Cancelled -> cancelled,
        # ChannelHangup -> hangup, ConnectionLost -> connection_lost,
        # TimeoutError -> timeout, anything else -> error.
    channel_dtmf_received(channel_uuid, digit)                          -> DtmfSpan
        # around the handler call: dtmf.handled = handler returned (or span.handled(b))
    ring_group_ring(*, mode, size, timeout, has_balancer, has_variables,
                    balanced=None)                                      -> RingGroupSpan
        # span.answered(uuid, dial_path); span.balanced(bool);
        # result on exit: answered if answered() was called, else no_answer;
        # Cancelled -> cancelled; TimeoutError -> no_answer; other -> error
        # (+ ring_group.error); ring_group.duration always.
        # span.set_result(RingGroupResult.X) overrides on a clean exit.
    session_sendmsg(channel_uuid, *, application, application_uuid, block)
    session_await_complete(channel_uuid, application_uuid)              -> WaitSpan
        # open it inside the session_sendmsg block when block=True (it is its child)
    consumer_start(host, port) / consumer_stop(host, port)
    queue_wait_and_acquire(queue_id, item_id, *, depth=None, max_concurrent=None,
                           timeout=None, timeout_error=TimeoutError,
                           meter_provider=None)                         -> QueueWaitSpan
        # the span (tracer genesis_trio.queue) and metrics every Queue wait records:
        # span.joined(depth), span.requeued(); queue.result (acquired / timeout /
        # cancelled / error) on exit. record_queue_release() when the slot is given back.
    inbound_connect(host, port)
    outbound_handle_connection(peer_host, peer_port, *, connection=None)
        # the peer is the accepted socket's remote address, not our listener

Connections
===========
``ConnectionTelemetry.create(kind, tracer_provider=None, meter_provider=None)``
returns None when nothing would record (no SDK configured), otherwise the
connection's observer (``ESLConnection(stream, observer=telemetry)``, the
adapter's :class:`~genesis_trio.ConnectionObserver` protocol; the
adapter never imports tracing): it records the ``process_event`` spans (with
the lifecycle and CUSTOM processors unless ``GENESIS_TRACE_ESL_LIFECYCLE=0`` /
``GENESIS_TRACE_CUSTOM_SUBCLASSES=0``, read at that moment) and wraps
``send_command``. ``telemetry.bind_call(uuid)``
parents a call's event spans on the current span (outbound sessions);
``telemetry.handler_context(event)`` is what handler workers run under, so a
handler's own spans join the event's call trace.

Metrics recorded outside a span: ``record_connection_error(kind, error)`` and
``record_reconnect(kind, succeeded=)`` (``genesis.connections.errors`` /
``.reconnects``, for reconnecting clients), ``record_queue_release()``
(``genesis.queue.operations{op="release"}``), ``record_balancer_pick(connection,
backend, error=None)`` (``genesis.loadbalancer.*``). Each takes
``meter_provider=`` (or the connection) like the helpers; no SDK, no work.

Other tools: :func:`trace_variables` (W3C context of the current span as
originate variables), :func:`format_span_tree` (finished spans as text), and
``names``: every span name, attribute key, event name and metric name as a constant.
"""

from .._publish import publish
from . import _names as names
from ._connection import ConnectionTelemetry, env_enabled
from ._correlation import CallTraces, trace_variables
from ._metrics import (
    record_balancer_pick,
    record_connection_error,
    record_queue_release,
    record_reconnect,
)
from ._names import (
    ENV_CUSTOM,
    ENV_LIFECYCLE,
    METRIC_EVENTS_WITHOUT_SIP_CALL_ID,
    TRACEPARENT_VARIABLE,
    TRACESTATE_VARIABLE,
)
from ._operations import (
    channel_answer,
    channel_bridge,
    channel_create,
    channel_dtmf_received,
    channel_hangup,
    channel_park,
    channel_play_and_get_digits,
    channel_playback,
    channel_say,
    channel_wait,
    consumer_start,
    consumer_stop,
    inbound_connect,
    outbound_handle_connection,
    queue_wait_and_acquire,
    ring_group_ring,
    session_await_complete,
    session_sendmsg,
)
from ._outcomes import RingGroupResult, WaitResult, classify_wait
from ._spans import DtmfSpan, OperationSpan, QueueWaitSpan, RingGroupSpan, WaitSpan
from ._tree import format_span_tree

__all__ = [
    "ENV_CUSTOM",
    "ENV_LIFECYCLE",
    "METRIC_EVENTS_WITHOUT_SIP_CALL_ID",
    "TRACEPARENT_VARIABLE",
    "TRACESTATE_VARIABLE",
    "CallTraces",
    "ConnectionTelemetry",
    "DtmfSpan",
    "OperationSpan",
    "QueueWaitSpan",
    "RingGroupResult",
    "RingGroupSpan",
    "WaitResult",
    "WaitSpan",
    "channel_answer",
    "channel_bridge",
    "channel_create",
    "channel_dtmf_received",
    "channel_hangup",
    "channel_park",
    "channel_play_and_get_digits",
    "channel_playback",
    "channel_say",
    "channel_wait",
    "classify_wait",
    "consumer_start",
    "consumer_stop",
    "env_enabled",
    "format_span_tree",
    "inbound_connect",
    "names",
    "outbound_handle_connection",
    "queue_wait_and_acquire",
    "record_balancer_pick",
    "record_connection_error",
    "record_queue_release",
    "record_reconnect",
    "ring_group_ring",
    "session_await_complete",
    "session_sendmsg",
    "trace_variables",
]

publish(globals())
