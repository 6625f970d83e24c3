"""Finding the tracer and meter to use, and whether anything would record.

Only ``opentelemetry-api`` is imported. With no SDK configured the API hands
out proxy/no-op objects; we detect that once (per connection, per call site)
so the hot paths can skip span and attribute work entirely.
"""

from __future__ import annotations

import weakref
from typing import Any

from opentelemetry import metrics, trace

from .._version import __version__
from ._names import QUEUE_TRACER

INSTRUMENTATION_NAME = "genesis_trio"

_NO_OP_METER_TYPES = ("NoOpMeter", "_ProxyMeter")


def _version() -> str:
    return __version__


_tracers: weakref.WeakKeyDictionary[Any, trace.Tracer] = weakref.WeakKeyDictionary()
_queue_tracers: weakref.WeakKeyDictionary[Any, trace.Tracer] = weakref.WeakKeyDictionary()


def get_tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """Our tracer from ``provider`` or, when None, from the global provider *now*."""
    return _cached_tracer(provider, _tracers, INSTRUMENTATION_NAME, _version())


def get_queue_tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The queue's tracer (scope ``genesis_trio.queue``, as the queue has always named it)."""
    return _cached_tracer(provider, _queue_tracers, QUEUE_TRACER, None)


def _cached_tracer(
    provider: trace.TracerProvider | None,
    cache: weakref.WeakKeyDictionary[Any, trace.Tracer],
    name: str,
    version: str | None,
) -> trace.Tracer:
    resolved = provider if provider is not None else trace.get_tracer_provider()
    try:
        tracer = cache.get(resolved)
    except TypeError:  # a provider that cannot be weakly referenced
        return resolved.get_tracer(name, version)
    if tracer is None:
        tracer = resolved.get_tracer(name, version)
        # A proxy tracer must not be cached: it is what stays behind when the
        # user configures the SDK later, and must keep resolving lazily.
        if not isinstance(tracer, trace.ProxyTracer):
            cache[resolved] = tracer
    return tracer


def get_meter(provider: metrics.MeterProvider | None = None) -> metrics.Meter:
    resolved = provider if provider is not None else metrics.get_meter_provider()
    return resolved.get_meter(INSTRUMENTATION_NAME, _version())


def tracer_records(tracer: trace.Tracer) -> bool:
    """False when spans from ``tracer`` can never be recorded (no SDK, SDK disabled)."""
    return not isinstance(tracer, trace.ProxyTracer | trace.NoOpTracer)


def meter_records(meter: metrics.Meter) -> bool:
    return type(meter).__name__ not in _NO_OP_METER_TYPES and not isinstance(
        meter, metrics.NoOpMeter
    )
