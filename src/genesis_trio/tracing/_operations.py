"""Spans around operations: one helper per span of the specification.

Each helper opens its span as a child of the caller's current span, makes it
current for the duration of the ``with`` block (so commands sent inside become
its children), and on exit writes the outcome, records a failure, and ends the
span (see :mod:`._spans` for the handles, :mod:`._outcomes` for the outcomes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypedDict

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider

from . import _names as n
from ._connection import ConnectionTelemetry
from ._metrics import Instruments, instruments_for
from ._providers import get_queue_tracer, get_tracer
from ._spans import (
    SILENT_TRACER,
    ConnectSpan,
    DtmfSpan,
    OperationSpan,
    OutboundConnectionSpan,
    QueueWaitSpan,
    RingGroupSpan,
    SendmsgSpan,
    SuccessSpan,
    WaitSpan,
)

if TYPE_CHECKING:
    from .._stream import ESLConnection


class _Recorders(TypedDict):
    """The ``tracer=`` / ``instruments=`` arguments of a span, resolved once."""

    tracer: trace.Tracer
    instruments: Instruments | None


def _resolve(
    connection: ESLConnection | None,
    tracer_provider: trace.TracerProvider | None,
    meter_provider: MeterProvider | None,
) -> _Recorders:
    telemetry = connection.telemetry if connection is not None else None
    if isinstance(telemetry, ConnectionTelemetry):
        tracer = telemetry.tracer
        if tracer is None:
            tracer = SILENT_TRACER if tracer_provider is None else get_tracer(tracer_provider)
        return _Recorders(tracer=tracer, instruments=telemetry.instruments)
    if connection is not None and tracer_provider is None and meter_provider is None:
        # Whether anything records was decided when the connection opened, and it
        # said nothing would (docs/tracing.md): no provider lookups, no span, no
        # context switch per operation.
        return _SILENT
    return _Recorders(
        tracer=get_tracer(tracer_provider), instruments=instruments_for(meter_provider)
    )


_SILENT: Final = _Recorders(tracer=SILENT_TRACER, instruments=None)


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
    return SuccessSpan(
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
    return SuccessSpan(
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
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    """``session.sendmsg``; open :func:`session_await_complete` inside it when blocking."""
    return SendmsgSpan(
        n.SESSION_SENDMSG,
        {
            n.CHANNEL_UUID: channel_uuid,
            n.APPLICATION_NAME: application,
            n.APPLICATION_UUID: application_uuid,
            n.APPLICATION_BLOCK: block,
        },
        **_resolve(connection, tracer_provider, meter_provider),
    )


def session_await_complete(
    channel_uuid: str,
    application_uuid: str,
    *,
    connection: ESLConnection | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> WaitSpan:
    """``session.await_complete`` (also carries ``wait.result``; a timeout counts in
    ``genesis.timeouts``)."""
    return WaitSpan(
        n.SESSION_AWAIT_COMPLETE,
        {n.CHANNEL_UUID: channel_uuid, n.APPLICATION_UUID: application_uuid},
        **_resolve(connection, tracer_provider, meter_provider),
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
    max_concurrent: int | None = None,
    timeout: float | None = None,
    timeout_error: type[BaseException] = TimeoutError,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> QueueWaitSpan:
    """``queue.wait_and_acquire`` (tracer ``genesis_trio.queue``): the span and metrics of
    every :class:`~genesis_trio.queue.Queue` wait, for a queue of your own too.

    ``span.joined(depth)`` once the depth is known, ``span.requeued()`` when the waiter
    lost its place; ``queue.result`` is written on exit (``timeout_error``: the exception
    that means the wait's own timeout ran out).
    """
    return QueueWaitSpan(
        {
            n.QUEUE_ID: queue_id,
            n.QUEUE_ITEM_ID: item_id,
            n.QUEUE_DEPTH: depth,
            n.QUEUE_MAX_CONCURRENT: max_concurrent,
            n.QUEUE_TIMEOUT: timeout,
        },
        timeout_error=timeout_error,
        tracer=get_queue_tracer(tracer_provider),
        instruments=instruments_for(meter_provider),
    )


def inbound_connect(
    host: str,
    port: int,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> OperationSpan:
    """``inbound_connect``: the peer is the FreeSWITCH we dial. A failure counts in
    ``genesis.connections.errors{type="inbound"}``."""
    return ConnectSpan(
        n.INBOUND_CONNECT,
        {n.NET_PEER_NAME: host, n.NET_PEER_PORT: port},
        **_resolve(None, tracer_provider, meter_provider),
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
    listening address. A call that fails counts in
    ``genesis.connections.errors{type="outbound"}``."""
    return OutboundConnectionSpan(
        n.OUTBOUND_HANDLE_CONNECTION,
        {n.NET_PEER_NAME: peer_host, n.NET_PEER_PORT: peer_port},
        **_resolve(connection, tracer_provider, None),
    )
