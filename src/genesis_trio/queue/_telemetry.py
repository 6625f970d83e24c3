"""The ``queue.wait_and_acquire`` span: one per waiter, from joining the line to holding a slot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

import anyio
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider

from ..tracing._metrics import Instruments, instruments_for

__all__ = ["QueueTelemetry", "WaitSpan"]

SPAN_NAME: Final = "queue.wait_and_acquire"
TRACER_NAME: Final = "genesis_trio.queue"

ATTR_QUEUE_ID: Final = "queue.id"
ATTR_ITEM_ID: Final = "queue.item_id"
# A span attribute, never a metric label: it is unbounded, and as a label it
# would create one time series per depth value.
ATTR_DEPTH: Final = "queue.depth"
ATTR_MAX_CONCURRENT: Final = "queue.max_concurrent"
ATTR_TIMEOUT: Final = "queue.timeout"
ATTR_RESULT: Final = "queue.result"

WaitResult = Literal["acquired", "timeout", "cancelled", "error"]


class WaitSpan:
    """The span of one wait, with the attributes known only while waiting."""

    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def joined(self, depth: int) -> None:
        if self._span.is_recording():
            self._span.set_attribute(ATTR_DEPTH, depth)

    def requeued(self) -> None:
        if self._span.is_recording():
            self._span.add_event("queue.requeued")

    def _finish(self, result: WaitResult, error: BaseException | None = None) -> None:
        if not self._span.is_recording():
            return
        self._span.set_attribute(ATTR_RESULT, result)
        if result in ("timeout", "error"):
            if error is not None and result == "error":
                self._span.record_exception(error)
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, str(error or result)))


class QueueTelemetry:
    """Gets its tracer on first use, so importing the queue costs nothing."""

    __slots__ = ("_meter_provider", "_tracer", "_tracer_provider")

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer: trace.Tracer | None = None

    def _instruments(self) -> Instruments | None:
        # Cached per provider; asked per wait so a later SDK set-up is seen.
        return instruments_for(self._meter_provider)

    def released(self) -> None:
        instruments = self._instruments()
        if instruments is not None:
            instruments.queue_operations.add(1, {"op": "release"})

    def _get_tracer(self) -> trace.Tracer:
        if self._tracer is None:
            self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=self._tracer_provider)
        return self._tracer

    @contextmanager
    def wait_span(
        self,
        *,
        queue_id: str,
        item_id: str,
        max_concurrent: int,
        timeout: float | None,
        timeout_error: type[BaseException],
    ) -> Iterator[WaitSpan]:
        span = self._get_tracer().start_span(SPAN_NAME, kind=trace.SpanKind.INTERNAL)
        if span.is_recording():
            span.set_attribute(ATTR_QUEUE_ID, queue_id)
            span.set_attribute(ATTR_ITEM_ID, item_id)
            span.set_attribute(ATTR_MAX_CONCURRENT, max_concurrent)
            if timeout is not None:
                span.set_attribute(ATTR_TIMEOUT, timeout)
        wait = WaitSpan(span)
        instruments = self._instruments()
        if instruments is not None:
            instruments.queue_waiting.add(1)
        started = anyio.current_time()
        result: WaitResult = "error"
        # Outcomes are recorded here by hand: the SDK's automatic handling would
        # mark a cancellation as an error, and cancellation is not a failure.
        try:
            with trace.use_span(
                span, end_on_exit=True, record_exception=False, set_status_on_exception=False
            ):
                try:
                    yield wait
                except timeout_error as exc:
                    result = "timeout"
                    wait._finish(result, exc)
                    raise
                except anyio.get_cancelled_exc_class():
                    result = "cancelled"
                    wait._finish(result)
                    raise
                except BaseException as exc:
                    wait._finish("error", exc)
                    raise
                else:
                    result = "acquired"
                    wait._finish(result)
        finally:
            if instruments is not None:
                # No queue id label: ids are the app's and may be per call or per customer.
                instruments.queue_waiting.add(-1)
                instruments.queue_wait_duration.record(
                    anyio.current_time() - started, {"result": result}
                )
                if result == "acquired":
                    instruments.queue_operations.add(1, {"op": "acquire"})
                elif result == "timeout":
                    instruments.timeouts.add(1, {"operation": "queue.wait"})
