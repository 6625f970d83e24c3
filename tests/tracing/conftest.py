"""Fixtures: an SDK tracer/meter provider per test, recording in memory.

Providers are passed explicitly (``tracer_provider=``) rather than set
globally, so tests stay independent and the global providers stay untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Recorded:
    provider: TracerProvider
    exporter: InMemorySpanExporter

    @classmethod
    def in_memory(cls) -> Recorded:
        """A provider that keeps every finished span for the test to read."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return cls(provider, exporter)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        finished = list(self.exporter.get_finished_spans())
        return finished if name is None else [s for s in finished if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.spans(name)
        assert len(found) == 1, f"expected one {name!r}, got {[s.name for s in self.spans()]}"
        return found[0]


@dataclass
class Metrics:
    provider: MeterProvider
    reader: InMemoryMetricReader

    def points(self, name: str) -> list[tuple[dict[str, object], float]]:
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, object], float]] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            if value is None:  # a histogram point: count the recordings
                                value = getattr(point, "count", 0)
                            found.append((dict(point.attributes or {}), float(value or 0)))
        return found

    def total(self, name: str) -> float:
        return sum(value for _, value in self.points(name))


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    spans = Recorded.in_memory()
    yield spans
    spans.provider.shutdown()


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield Metrics(provider, reader)
    provider.shutdown()


@pytest.fixture(autouse=True)
def _processors_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENESIS_TRACE_ESL_LIFECYCLE", raising=False)
    monkeypatch.delenv("GENESIS_TRACE_CUSTOM_SUBCLASSES", raising=False)
