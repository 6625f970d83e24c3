"""A connection that opened with nothing recording keeps that decision for its operations.

docs/tracing.md: whether anything records is decided when a connection
starts (the providers given to it, else the global ones at that moment). The
operation spans of such a connection (``channel.answer``, ``session.sendmsg``,
...) start nothing, read no provider and leave the current context alone,
even when a global SDK provider exists (the CLI tests install one for the
whole test process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NonRecordingSpan, NoOpTracerProvider, SpanContext, TraceFlags

from genesis_trio import tracing
from genesis_trio.testing import FakeFreeSWITCH
from genesis_trio.tracing import WaitResult
from outbound._helpers import session_call

pytestmark = pytest.mark.trio

SILENT = {"tracer_provider": NoOpTracerProvider(), "meter_provider": NoOpMeterProvider()}


@contextmanager
def counting_provider_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every read of OpenTelemetry's global providers, by name."""
    seen: list[str] = []

    def counted(name: str, real: Callable[[], Any]) -> Callable[[], Any]:
        def lookup() -> Any:
            seen.append(name)
            return real()

        return lookup

    monkeypatch.setattr(trace, "get_tracer_provider", counted("tracer", trace.get_tracer_provider))
    monkeypatch.setattr(metrics, "get_meter_provider", counted("meter", metrics.get_meter_provider))
    yield seen


async def test_a_silent_session_reads_no_provider_per_operation(
    fake: FakeFreeSWITCH, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.set_media_duration("ivr/hello.wav", 0.05)
    async with session_call(fake, **SILENT) as (session, _):
        assert session.connection.telemetry is None
        with counting_provider_lookups(monkeypatch) as lookups, trio.fail_after(30):
            await session.channel.answer()
            await session.channel.playback("ivr/hello.wav")
            await session.channel.hangup()
        assert lookups == []


async def test_a_silent_connection_s_spans_leave_the_current_context_alone(
    fake: FakeFreeSWITCH,
) -> None:
    # A context propagated from elsewhere (W3C traceparent) with no SDK here: it stays
    # current through our operations, so whatever the caller passes on still carries it.
    remote = NonRecordingSpan(
        SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    )
    async with session_call(fake, **SILENT) as (session, _):
        token = otel_context.attach(trace.set_span_in_context(remote))
        try:
            with tracing.channel_wait(
                session.uuid,
                target="CHANNEL_ANSWER",
                timeout=1,
                wait_type="event",
                connection=session.connection,
            ) as span:
                assert trace.get_current_span() is remote
                assert not span.recording
        finally:
            otel_context.detach(token)
    # The outcome is still decided: callers read it.
    assert span.result is WaitResult.MATCHED
    assert span.elapsed == 0.0
