"""The Genesis side of the benchmarks; runs in benchmarks/.peer-venv, not in ours.

Self-contained on purpose (stdlib + ``genesis``): the peer environment does
not have genesis_trio installed. Prints one JSON sample on stdout. Every
handler is an ``async def``: Genesis sends a synchronous handler through
``asyncio.to_thread``, which would make it look much slower than it is.

How each benchmark drives Genesis (its public API, nothing patched):

- ``consumer`` plain: ``genesis.Consumer`` with one ``@app.handle(name)`` per
  recorded event name, ``app.start()`` (which sends ``events plain ALL`` and a
  ``filter Event-Name <name>`` per handler).
- ``consumer`` json: ``Consumer.start`` hard-codes ``events plain ALL``, so the
  same Consumer's handlers and filters are set up by the same steps on its
  ``Inbound`` (``app.protocol``) with ``event json ALL``. Genesis's reader does
  not decode json (a json frame becomes an event with no headers but
  Content-Type/Content-Length and the JSON text as body, so no handler would
  ever run): a user-level processor, inserted first in the connection's
  ``event_processors`` chain, does ``json.loads`` and fills the event in
  (``_body`` becomes ``.body``), so routing, handler tasks and the lifecycle
  processors see the same event as in plain.
- ``raw``: ``genesis.Inbound`` with a wildcard handler ``on("*", ...)`` (Genesis
  has no async iterator over events; "*" is its catch-all route).
- ``api-seq`` / ``api-conc``: ``await inbound.send("api status")``, one task or
  ``--concurrency`` tasks sharing the connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any

import genesis

PASSWORD = "ClueCon"


READ_HEADERS = ("Unique-ID", "Channel-State", "Caller-Caller-ID-Number")


# --- the OpenTelemetry SDK (--otel) --------------------------------------------
# The same text in ours.py and peer_genesis.py: both sides get the same SDK set-up.


def install_sdk() -> Callable[[], int]:
    """Configure the OpenTelemetry SDK globally, as an application would.

    A ``TracerProvider`` with a ``BatchSpanProcessor`` whose exporter counts and
    drops every span, and a ``MeterProvider`` with an in-memory reader (never
    collected). Returns a function that flushes the batch processor and tells
    how many spans were exported so far.
    """
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class DroppingExporter(SpanExporter):
        exported = 0

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.exported += len(spans)
            return SpanExportResult.SUCCESS

    exporter = DroppingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

    def exported_spans() -> int:
        tracer_provider.force_flush()
        return exporter.exported

    return exported_spans


class Counter:
    """Counts events reaching the handler; stamps the first and the last."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.done = asyncio.Event()

    async def reading_handler(self, event: Any) -> None:
        # What a typical handler does: look at a few headers of every event.
        for name in READ_HEADERS:
            event.get(name)
        await self.handler(event)

    async def handler(self, event: Any) -> None:
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
            self.cpu_first = time.process_time()
        if self.count == self.target:
            self.last = time.perf_counter()
            self.cpu_last = time.process_time()
            self.done.set()

    def sample(self) -> dict[str, Any]:
        seconds = self.last - self.first
        return {
            "count": self.count,
            "seconds": seconds,
            "rate": (self.count - 1) / seconds,
            "cpu": (self.cpu_last - self.cpu_first) / seconds,
        }


def decode_json_processor(protocol: Any, event: Any) -> None:
    """What a Genesis user must add to consume ``event json``: decode the body."""
    if event.get("Content-Type") == "text/event-json" and event.body:
        fields = json.loads(event.body)
        body = fields.pop("_body", None)
        event.data.update(fields)
        event.body = body


async def bench_consumer(
    host: str,
    port: int,
    event_format: str,
    names: list[str],
    events: int,
    read_headers: bool = False,
) -> dict[str, Any]:
    counter = Counter(events)
    app = genesis.Consumer(host, port, PASSWORD)
    handler = counter.reading_handler if read_headers else counter.handler
    for name in names:
        app.handle(name)(handler)
    if event_format == "plain":
        runner = asyncio.create_task(app.start())
    else:
        runner = asyncio.create_task(_consumer_json(app))
    try:
        await counter.done.wait()
    finally:
        await app.stop()
        runner.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await runner
    return counter.sample()


async def _consumer_json(app: Any) -> None:
    """Consumer.start's steps with a json subscription (see the module docstring)."""
    protocol = app.protocol
    protocol.on("HEARTBEAT", genesis.observability.observability.record_heartbeat)
    protocol.event_processors.insert(0, decode_json_processor)
    async with protocol:
        await protocol.send("event json ALL")
        for name in list(protocol.handlers):
            await protocol.send(app._filter_command(name))
        await app.wait()


async def bench_raw(host: str, port: int, event_format: str, events: int) -> dict[str, Any]:
    counter = Counter(events)
    inbound = genesis.Inbound(host, port, PASSWORD)
    inbound.on("*", counter.handler)
    if event_format == "json":
        inbound.event_processors.insert(0, decode_json_processor)
    async with inbound:
        await inbound.send(f"event {event_format} ALL")
        await counter.done.wait()
    return counter.sample()


async def bench_api(host: str, port: int, calls: int, concurrency: int) -> dict[str, Any]:
    async with genesis.Inbound(host, port, PASSWORD) as inbound:
        await inbound.send("api status")  # warm the path once, outside the clock

        async def worker(count: int) -> None:
            for _ in range(count):
                reply = await inbound.send("api status")
                if not reply.body:
                    raise RuntimeError(f"unexpected api reply {reply!r}")

        shares = [calls // concurrency + (i < calls % concurrency) for i in range(concurrency)]
        cpu = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in shares))
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    return {"count": calls, "seconds": seconds, "rate": calls / seconds, "cpu": cpu / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description="Genesis side of genesis_trio's benchmarks")
    parser.add_argument("bench", choices=["consumer", "raw", "api-seq", "api-conc"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--format", dest="event_format", choices=["plain", "json"])
    parser.add_argument("--names", default="", help="comma-separated handler event names")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--read-headers", action="store_true")
    parser.add_argument(
        "--otel", action="store_true", help="configure the OpenTelemetry SDK (install_sdk)"
    )
    args = parser.parse_args()
    exported_spans = install_sdk() if args.otel else None

    job: Callable[[], Awaitable[dict[str, Any]]]
    if args.bench == "consumer":
        names = [n for n in args.names.split(",") if n]
        fmt = args.event_format or "plain"
        job = lambda: bench_consumer(  # noqa: E731
            args.host, args.port, fmt, names, args.events, args.read_headers
        )
    elif args.bench == "raw":
        fmt = args.event_format or "plain"
        job = lambda: bench_raw(args.host, args.port, fmt, args.events)  # noqa: E731
    else:
        concurrency = 1 if args.bench == "api-seq" else args.concurrency
        job = lambda: bench_api(args.host, args.port, args.calls, concurrency)  # noqa: E731

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            return await job()

    result = asyncio.run(bounded())
    if exported_spans is not None:
        result["spans"] = exported_spans()
    result["library"] = f"genesis {genesis.__version__}"
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
