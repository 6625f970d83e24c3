"""Scraping ``/metrics`` and reading the Prometheus text back (prometheus_client's parser),
and probing ``/ready`` of an app in another process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import httpx
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from waiting import wait_until

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


# Another process's readiness announces nothing: it is probed, as a load balancer would.
PROBE_INTERVAL = 0.05


async def wait_for_status(
    http: httpx.AsyncClient, path: str, status: int, *, within: float = 60.0
) -> None:
    """Probe ``path`` until it answers ``status`` (bounded: ``trio.TooSlowError`` after)."""

    async def answers() -> bool:
        return (await http.get(path)).status_code == status

    await wait_until(answers, within=within, interval=PROBE_INTERVAL, what=f"{path} -> {status}")


async def ready_with_heartbeats(
    http: httpx.AsyncClient, heartbeat: Callable[[], Awaitable[object]], *, within: float = 60.0
) -> None:
    """Probe ``/ready`` until 200, sending a HEARTBEAT (``heartbeat()``) before each look.

    A Consumer is ready once an event came on its connection; the switch's own HEARTBEAT
    comes every 20 s, and one sent before the app subscribed is lost: hence one per look.
    """

    async def ready() -> bool:
        await heartbeat()
        return (await http.get("/ready")).status_code == 200

    await wait_until(ready, within=within, interval=PROBE_INTERVAL, what="/ready -> 200")


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
