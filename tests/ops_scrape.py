"""Scraping ``/metrics`` and reading the Prometheus text back (prometheus_client's parser)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextmanager
def prometheus_provider() -> Iterator[tuple[MeterProvider, CollectorRegistry]]:
    """A MeterProvider exported to a registry of its own (not prometheus_client's global one)."""
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    try:
        yield provider, registry
    finally:
        provider.shutdown()


async def scrape(http: httpx.AsyncClient) -> Samples:
    """``GET /metrics`` parsed: ``{(sample name, labels): value}``."""
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def values(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return {key: value for (n, key), value in samples.items() if n == name and wanted <= key}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(values(samples, name, **labels).values())


def label_values(samples: Samples) -> set[str]:
    """Every label value of the library's metrics (not the SDK's ``target_info``, whose
    ``service_instance_id`` is a uuid per process)."""
    return {value for (name, labels) in samples if name != "target_info" for _, value in labels}


def label_keys(samples: Samples, name: str) -> set[str]:
    """The label keys of ``name``, without the ``otel_scope_*`` ones the exporter adds."""
    return {
        key
        for (n, labels) in samples
        if n == name
        for key, _ in labels
        if not key.startswith("otel_scope_")
    }
