"""OpenTelemetry SDK set-up for the CLI, driven by the standard OTEL_* variables."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("genesis_trio.cli")


def configure_from_environment(*, prometheus: bool = False) -> bool:
    """Install an OTLP/HTTP exporter when OTEL_EXPORTER_OTLP_*ENDPOINT is set.

    Returns whether an SDK provider was installed. Needs the ``otel`` extra
    (opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http).
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    wants_traces = bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    wants_metrics = bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    )
    if prometheus:
        # /metrics reads this provider; OTLP (when asked for) exports the same instruments.
        from ..ops import prometheus_meter_provider

        readers: list[object] = []
        if wants_metrics:
            try:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                    OTLPMetricExporter,
                )
                from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

                readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
            except ImportError:
                logger.warning("OTLP metrics need genesis-trio[otel]; serving /metrics only")
        from opentelemetry import metrics
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", "genesis-trio")}
        )
        metrics.set_meter_provider(prometheus_meter_provider(*readers, resource=resource))
        wants_metrics = False
    if not (wants_traces or wants_metrics):
        return prometheus
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "OTEL_EXPORTER_OTLP_* is set but the SDK is missing: "
            "install genesis-trio[otel] to export telemetry"
        )
        return False
    service = os.environ.get("OTEL_SERVICE_NAME", "genesis-trio")
    resource = Resource.create({"service.name": service})
    if wants_traces:
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    if wants_metrics:
        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    return True
