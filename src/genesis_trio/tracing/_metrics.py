"""Metric instruments, created once per meter.

Cardinality rule: labels are small closed sets (event name, command verb,
hangup cause, direction, result). UUIDs, numbers dialled and Call-IDs go on
spans only, never into a metric label.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable
from functools import partial
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from .._exceptions import AuthenticationError, ConnectionLost, ConnectTimeout
from . import _names as n
from ._providers import get_meter, meter_records
from ._tally import TALLIED, Tally

__all__ = [
    "Instruments",
    "Tally",
    "connection_error_label",
    "instruments_for",
    "instruments_of",
    "record_balancer_pick",
    "record_connection_error",
    "record_reconnect",
]

# Bucket boundaries in seconds. The SDK's default boundaries (0, 5, 10, 25 ... 10000) suit
# milliseconds; every duration here is in seconds.
COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OPERATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CALL_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
# Ringing: a phone rings for seconds, rarely past two minutes (ring groups, originate, answer).
RING_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0)
# Waiting in a call queue: from no wait at all to an hour on hold.
QUEUE_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# One event through the reader (hooks and routing, not the handlers): microseconds.
EVENT_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1)
# One handler call: from a counter bump to a slow database write.
HANDLER_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class Instruments:
    """Every instrument genesis_trio records into."""

    def __init__(self, meter: metrics.Meter) -> None:
        # The tallied counters: the live connections' tallies plus what the connections
        # gone so far had counted (a connection's totals outlive it).
        self._tally_lock = threading.Lock()
        self._live_tallies: set[Tally] = set()
        # Finalizers only append here (they may run inside a collection, under the lock);
        # the next collection or new tally folds them into _retired.
        self._dead_tallies: list[Tally] = []
        self._retired: dict[str, dict[frozenset[tuple[str, str]], int]] = {
            which: {} for which, *_ in TALLIED
        }
        for which, name, up_down, unit, description in TALLIED:
            create = (
                meter.create_observable_up_down_counter
                if up_down
                else meter.create_observable_counter
            )
            create(
                name,
                callbacks=[partial(self._observe_tally, which)],
                unit=unit,
                description=description,
            )
        self.commands_errors = meter.create_counter(
            n.METRIC_COMMANDS_ERRORS,
            unit="{command}",
            description="ESL commands that failed (-ERR reply or connection lost)",
        )
        self.commands_duration = meter.create_histogram(
            n.METRIC_COMMANDS_DURATION,
            unit="s",
            description="Time from writing an ESL command to its reply",
            explicit_bucket_boundaries_advisory=COMMAND_BUCKETS,
        )
        self.connections_active = meter.create_up_down_counter(
            n.METRIC_CONNECTIONS_ACTIVE, unit="{connection}", description="Open ESL connections"
        )
        self.channel_operations = meter.create_counter(
            n.METRIC_CHANNEL_OPERATIONS,
            unit="{operation}",
            description="Channel operations by operation and result",
        )
        self.channel_operation_duration = meter.create_histogram(
            n.METRIC_CHANNEL_OPERATION_DURATION,
            unit="s",
            description="Duration of channel operations",
            explicit_bucket_boundaries_advisory=OPERATION_BUCKETS,
        )
        self.call_duration = meter.create_histogram(
            n.METRIC_CALL_DURATION,
            unit="s",
            description="Channel lifetime from creation to hangup, by direction and hangup cause "
            "(from CHANNEL_HANGUP_COMPLETE)",
            explicit_bucket_boundaries_advisory=CALL_BUCKETS,
        )
        self.ring_group_results = meter.create_counter(
            n.METRIC_RING_GROUP_RESULTS,
            unit="{ring}",
            description="Ring group attempts by mode and result",
        )

        self.call_ring_duration = meter.create_histogram(
            n.METRIC_CALL_RING_DURATION,
            unit="s",
            description="Time from channel creation to answer (from CHANNEL_ANSWER)",
            explicit_bucket_boundaries_advisory=RING_BUCKETS,
        )
        self.timeouts = meter.create_counter(
            n.METRIC_TIMEOUTS,
            unit="{timeout}",
            description="Operations that ended because their own deadline expired",
        )
        self.connections_errors = meter.create_counter(
            n.METRIC_CONNECTIONS_ERRORS,
            unit="{error}",
            description="Failed connection attempts and connections lost unexpectedly",
        )
        self.connections_reconnects = meter.create_counter(
            n.METRIC_CONNECTIONS_RECONNECTS,
            unit="{attempt}",
            description="Reconnection attempts by result",
        )
        self.event_processing_duration = meter.create_histogram(
            n.METRIC_EVENT_PROCESSING_DURATION,
            unit="s",
            description="Time the reader spends on one event (telemetry, routing to "
            "subscriptions and handler queues; not the handlers themselves)",
            explicit_bucket_boundaries_advisory=EVENT_BUCKETS,
        )
        self.handler_duration = meter.create_histogram(
            n.METRIC_HANDLER_DURATION,
            unit="s",
            description="Duration of event handler calls",
            explicit_bucket_boundaries_advisory=HANDLER_BUCKETS,
        )
        self.session_commands = meter.create_counter(
            n.METRIC_SESSION_COMMANDS,
            unit="{command}",
            description="sendmsg execute commands by application and result",
        )
        self.session_command_duration = meter.create_histogram(
            n.METRIC_SESSION_COMMAND_DURATION,
            unit="s",
            description="Duration of sendmsg commands (to completion when blocking)",
            explicit_bucket_boundaries_advisory=OPERATION_BUCKETS,
        )
        self.ring_group_duration = meter.create_histogram(
            n.METRIC_RING_GROUP_DURATION,
            unit="s",
            description="Ring time of ring groups, from the first leg dialled to the result",
            explicit_bucket_boundaries_advisory=RING_BUCKETS,
        )
        self.loadbalancer_selections = meter.create_counter(
            n.METRIC_LOADBALANCER_SELECTIONS,
            unit="{selection}",
            description="Destinations picked by a load balancer (selected / fallback)",
        )
        self.loadbalancer_errors = meter.create_counter(
            n.METRIC_LOADBALANCER_ERRORS,
            unit="{error}",
            description="Load balancer failures by backend and error type",
        )
        self.queue_operations = meter.create_counter(
            n.METRIC_QUEUE_OPERATIONS,
            unit="{operation}",
            description="Queue slots acquired and released",
        )
        self.queue_wait_duration = meter.create_histogram(
            n.METRIC_QUEUE_WAIT_DURATION,
            unit="s",
            description="Time waiting in line for a queue slot, by result",
            explicit_bucket_boundaries_advisory=QUEUE_BUCKETS,
        )
        self.queue_waiting = meter.create_up_down_counter(
            n.METRIC_QUEUE_WAITING,
            unit="{waiter}",
            description="Callers waiting in line for a queue slot (in this process)",
        )
        # The two depth gauges read the open connections when a reader collects: nothing
        # is done per command or per event. Keyed weakly so a connection never stays alive
        # for a gauge.
        self._connections: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._kinds_seen: set[str] = set()
        meter.create_observable_gauge(
            n.METRIC_COMMANDS_QUEUE_DEPTH,
            callbacks=[self._observe_commands_depth],
            unit="{command}",
            description="Commands written and waiting for their reply, summed over connections",
        )
        meter.create_observable_gauge(
            n.METRIC_EVENTS_QUEUE_DEPTH,
            callbacks=[self._observe_events_depth],
            unit="{event}",
            description="Events routed to subscriptions and handlers and not consumed yet, "
            "summed over connections",
        )

    # --- the tallied counters ----------------------------------------------------------
    def tally_for(self, owner: object) -> Tally:
        """A new tally whose counts are reported as long as ``owner`` lives, and then
        kept in the totals."""
        tally = Tally()
        with self._tally_lock:
            self._fold_dead()
            self._live_tallies.add(tally)
        finalizer = weakref.finalize(owner, self._dead_tallies.append, tally)
        finalizer.atexit = False
        return tally

    def _fold_dead(self) -> None:
        """Move the tallies of owners gone into the totals (the lock is held)."""
        while self._dead_tallies:
            tally = self._dead_tallies.pop()
            self._live_tallies.discard(tally)
            for which, retired in self._retired.items():
                for key, value in dict(getattr(tally, which)).items():
                    labels = frozenset(key)
                    retired[labels] = retired.get(labels, 0) + value

    def _observe_tally(self, which: str, options: CallbackOptions) -> Iterable[Observation]:
        with self._tally_lock:
            self._fold_dead()
            totals = dict(self._retired[which])
            live = list(self._live_tallies)
        for tally in live:
            for key, value in dict(getattr(tally, which)).items():
                labels = frozenset(key)
                totals[labels] = totals.get(labels, 0) + value
        return [Observation(value, dict(labels)) for labels, value in totals.items()]

    # --- the depth gauges ------------------------------------------------------------
    def connection_opened(self, connection: Any, kind: str) -> None:
        self._connections[connection] = kind
        self._kinds_seen.add(kind)

    def connection_closed(self, connection: Any) -> None:
        self._connections.pop(connection, None)

    def _per_kind(self, measure: Any) -> Iterable[Observation]:
        totals = dict.fromkeys(self._kinds_seen, 0)
        for connection, kind in list(self._connections.items()):
            try:
                totals[kind] += measure(connection)
            except Exception:  # a gauge must never break a scrape
                continue
        return [Observation(value, {"type": kind}) for kind, value in totals.items()]

    def _observe_commands_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._per_kind(lambda connection: connection.commands_waiting)

    def _observe_events_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._per_kind(lambda connection: connection.events_buffered)


# Per provider: its instruments, or _SILENT when its meters record nothing. The "nothing
# records" answer is cached too: the API's proxy provider keeps every meter it hands out
# (so that it can upgrade them once an SDK is set), and asking it once per operation grew
# memory by about 4 KiB per call. Once an SDK is configured, ``get_meter_provider()``
# returns that SDK's provider, a new key, so the cached answer never hides it.
_SILENT = object()
_by_provider: weakref.WeakKeyDictionary[Any, object] = weakref.WeakKeyDictionary()


def instruments_for(provider: metrics.MeterProvider | None = None) -> Instruments | None:
    """The instruments of ``provider`` (global when None), or None if nothing records."""
    resolved = provider if provider is not None else metrics.get_meter_provider()
    try:
        cached = _by_provider.get(resolved)
    except TypeError:
        cached = None
    if cached is not None:
        return cached if isinstance(cached, Instruments) else None
    meter = get_meter(resolved)
    created = Instruments(meter) if meter_records(meter) else None
    with contextlib.suppress(TypeError):  # a provider that cannot be weakly referenced
        _by_provider[resolved] = _SILENT if created is None else created
    return created


_CONNECTION_ERRORS: Final = (
    (ConnectTimeout, "timeout"),
    (AuthenticationError, "authentication_failed"),
    (ConnectionLost, "connection_lost"),
    (TimeoutError, "timeout"),
    (ConnectionRefusedError, "refused"),
)


def connection_error_label(error: BaseException | str) -> str:
    """A small closed set for the ``error`` label: never a message (it can hold addresses)."""
    if isinstance(error, str):
        return error
    for kind, label in _CONNECTION_ERRORS:
        if isinstance(error, kind):
            return label
    return type(error).__name__


def record_connection_error(
    kind: str,
    error: BaseException | str,
    *,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Count a failed connection attempt or a lost connection in ``genesis.connections.errors``.

    ``kind`` is the connection type (``inbound``, ``outbound``); ``error`` an exception
    (mapped to ``timeout``, ``authentication_failed``, ``connection_lost``, ``refused`` or
    its type name) or a label. Nothing happens when no SDK records.
    """
    instruments = instruments_for(meter_provider)
    if instruments is not None:
        instruments.connections_errors.add(
            1, {"type": kind, "error": connection_error_label(error)}
        )


def record_reconnect(
    kind: str,
    *,
    succeeded: bool,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Count one reconnection attempt in ``genesis.connections.reconnects`` (``result``:
    ``success`` / ``failure``). For reconnecting clients: call it after each attempt."""
    instruments = instruments_for(meter_provider)
    if instruments is not None:
        instruments.connections_reconnects.add(
            1, {"type": kind, "result": "success" if succeeded else "failure"}
        )


def record_queue_release(*, meter_provider: metrics.MeterProvider | None = None) -> None:
    """Count a queue slot given back in ``genesis.queue.operations`` (``op=release``)."""
    instruments = instruments_for(meter_provider)
    if instruments is not None:
        instruments.queue_operations.add(1, {"op": "release"})


def instruments_of(
    connection: Any, meter_provider: metrics.MeterProvider | None = None
) -> Instruments | None:
    """The instruments a connection records into (its telemetry's), else the provider's."""
    telemetry = getattr(connection, "telemetry", None) if connection is not None else None
    if telemetry is not None:
        instruments: Instruments | None = telemetry.instruments
        return instruments
    return instruments_for(meter_provider)


def record_balancer_pick(
    connection: Any, backend: object, error: BaseException | None = None
) -> None:
    """A load balancer picked a destination (or failed to): ``genesis.loadbalancer.*``.

    Labels: the backend's class name and the result (or the error's type), never the
    destination picked.
    """
    instruments = instruments_of(connection)
    if instruments is None:
        return
    name = type(backend).__name__
    if error is None:
        instruments.loadbalancer_selections.add(
            1, {"loadbalancer.backend": name, "loadbalancer.result": "selected"}
        )
    else:
        instruments.loadbalancer_errors.add(
            1, {"loadbalancer.backend": name, "error": type(error).__name__}
        )
