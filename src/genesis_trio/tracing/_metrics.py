"""Metric instruments, created once per meter.

Cardinality rule: labels are small closed sets (event name, command verb,
hangup cause, direction, result). UUIDs, numbers dialled and Call-IDs go on
spans only, never into a metric label.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from opentelemetry import metrics

from . import _names as n
from ._providers import get_meter, meter_records

__all__ = ["Instruments", "instruments_for"]

# Bucket boundaries in seconds. The SDK's default boundaries (0, 5, 10, 25 ... 10000) suit
# milliseconds; every duration here is in seconds.
COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OPERATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CALL_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)


class Instruments:
    """Every instrument genesis_trio records into."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.events_without_sip_call_id = meter.create_counter(
            n.METRIC_EVENTS_WITHOUT_SIP_CALL_ID,
            unit="{event}",
            description="Channel events that arrived without variable_sip_call_id "
            "(calls that cannot be joined to another system's traces)",
        )
        self.events_received = meter.create_counter(
            n.METRIC_EVENTS_RECEIVED, unit="{event}", description="ESL events received"
        )
        self.commands_sent = meter.create_counter(
            n.METRIC_COMMANDS_SENT, unit="{command}", description="ESL commands sent"
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
        self.calls_active = meter.create_up_down_counter(
            n.METRIC_CALLS_ACTIVE,
            unit="{channel}",
            description="Channels between CHANNEL_CREATE and CHANNEL_DESTROY",
        )
        self.hangup_causes = meter.create_counter(
            n.METRIC_HANGUP_CAUSES, unit="{channel}", description="Hangups by cause"
        )
        self.dialplan_applications = meter.create_counter(
            n.METRIC_DIALPLAN_APPLICATIONS,
            unit="{application}",
            description="Dialplan applications started and completed",
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
        self.hangup_causes_q850 = meter.create_counter(
            n.METRIC_HANGUP_CAUSES_Q850,
            unit="{channel}",
            description="Hangups by Q.850 cause code (from CHANNEL_HANGUP_COMPLETE)",
        )
        self.ring_group_results = meter.create_counter(
            n.METRIC_RING_GROUP_RESULTS,
            unit="{ring}",
            description="Ring group attempts by mode and result",
        )


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
