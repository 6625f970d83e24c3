"""Small helpers shared by the tracing tests."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.sdk.trace import ReadableSpan

from genesis_trio import Inbound
from genesis_trio.testing import FakeFreeSWITCH

from .conftest import Metrics, Recorded


def traced_inbound(
    fake: FakeFreeSWITCH, recorded: Recorded, metrics: Metrics | None = None
) -> Inbound:
    """A client of the fake switch whose spans (and metrics, when given) are recorded."""
    return Inbound(
        fake.host,
        fake.port,
        "ClueCon",
        tracer_provider=recorded.provider,
        meter_provider=None if metrics is None else metrics.provider,
    )


def everything_recorded(spans: Iterable[ReadableSpan]) -> str:
    """Every name, attribute, event and status text of ``spans`` as one string."""
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{k}={v!s}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.append(event.name)
            parts.extend(f"{k}={v!s}" for k, v in (event.attributes or {}).items())
        if span.status.description:
            parts.append(span.status.description)
    return "\n".join(parts)


def parent_of(span: ReadableSpan, spans: Iterable[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    for candidate in spans:
        if candidate.context is not None and candidate.context.span_id == span.parent.span_id:
            return candidate
    return None
