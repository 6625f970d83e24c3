"""The genesis_trio side of the benchmarks: one sample per process, JSON on stdout.

Usage: ``python -m benchmarks.ours consumer --format plain --names A,B --port P``
(normally started by :mod:`benchmarks.run`). Runs on trio unless
``--backend asyncio``. ``--event-hook module:attr`` installs a callable
``(Event) -> None`` with ``ESLConnection.add_event_hook`` (``noop`` for a
do-nothing hook), so the cost of per-event instrumentation can be measured by
rerunning the same benchmark with and without it.

``api-floor`` is no library at all: the floor of a sequential ``api status``
round trip on trio (see :func:`bench_api_floor`), measured the same way.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

import genesis_trio
from genesis_trio import Consumer, Event, EventFormat, Inbound

PASSWORD = "ClueCon"
EventHook = Callable[[Event], None]


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
        self.done = anyio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
            self.cpu_first = time.process_time()
        if self.count == self.target:
            self.last = time.perf_counter()
            self.cpu_last = time.process_time()
            self.done.set()

    async def handler(self, event: Event) -> None:
        self.hit()

    async def reading_handler(self, event: Event) -> None:
        # What a typical handler does: look at a few headers of every event.
        for name in READ_HEADERS:
            event.get(name)
        self.hit()

    def sample(self) -> dict[str, Any]:
        seconds = self.last - self.first
        return {
            "count": self.count,
            "seconds": seconds,
            "rate": (self.count - 1) / seconds,
            "cpu": (self.cpu_last - self.cpu_first) / seconds,
        }


def _noop_hook(event: Event) -> None:
    pass


def load_hook(spec: str | None) -> EventHook | None:
    if not spec:
        return None
    if spec == "noop":
        return _noop_hook
    module_name, _, attribute = spec.partition(":")
    hook: EventHook = getattr(importlib.import_module(module_name), attribute)
    return hook


async def bench_consumer(
    port: int,
    event_format: EventFormat,
    names: list[str],
    events: int,
    hook: EventHook | None,
    *,
    concurrent: bool,
    read_headers: bool = False,
) -> dict[str, Any]:
    counter = Counter(events)
    app = Consumer("127.0.0.1", port, PASSWORD, event_format=event_format, concurrent=concurrent)
    handler = counter.reading_handler if read_headers else counter.handler
    for name in names:
        app.handle(name)(handler)
    async with anyio.create_task_group() as tg:
        client: Inbound = await tg.start(app.serve)
        if hook is not None:
            client.connection.add_event_hook(hook)
        await counter.done.wait()
        tg.cancel_scope.cancel()
    return counter.sample()


async def bench_raw(
    port: int, event_format: EventFormat, events: int, hook: EventHook | None
) -> dict[str, Any]:
    counter = Counter(events)
    async with Inbound("127.0.0.1", port, PASSWORD) as client:
        if hook is not None:
            client.connection.add_event_hook(hook)
        async with client.subscribe(request=False) as subscription:
            await client.events("ALL", event_format=event_format)
            async for _event in subscription:
                counter.hit()
                if counter.count == events:
                    break
    return counter.sample()


async def bench_api(port: int, calls: int, concurrency: int) -> dict[str, Any]:
    async with Inbound("127.0.0.1", port, PASSWORD) as client:
        await client.api("status")  # warm the path once, outside the clock

        async def worker(count: int) -> None:
            for _ in range(count):
                await client.api("status")

        shares = [calls // concurrency + (i < calls % concurrency) for i in range(concurrency)]
        cpu = time.process_time()
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for share in shares:
                tg.start_soon(worker, share)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    return {"count": calls, "seconds": seconds, "rate": calls / seconds, "cpu": cpu / seconds}


async def bench_api_floor(port: int, calls: int) -> dict[str, Any]:
    """Sequential ``api status`` calls with no library: the floor of a round trip on trio.

    A non-blocking socket, ``send`` of the command, ``trio.lowlevel.wait_readable`` and
    ``recv`` until the header block and its ``Content-Length`` body are in, found with
    ``bytes.find``: what any trio client must do per call, and nothing else (no parsing
    into messages, no task but this one, no cancellation checks, no reply matching).
    """
    import socket

    import trio

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    buffer = b""

    async def frame() -> bytes:
        nonlocal buffer
        while True:
            end = buffer.find(b"\n\n")
            if end >= 0:
                at = buffer.find(b"Content-Length: ", 0, end)
                length = 0 if at < 0 else int(buffer[at + 16 : buffer.find(b"\n", at, end + 1)])
                if len(buffer) >= end + 2 + length:
                    whole, buffer = buffer[: end + 2 + length], buffer[end + 2 + length :]
                    return whole
            await trio.lowlevel.wait_readable(sock)
            buffer += sock.recv(65536)

    try:
        await frame()  # auth/request
        sock.sendall(f"auth {PASSWORD}\n\n".encode())
        if b"+OK" not in await frame():
            raise RuntimeError("auth refused")
        command = b"api status\n\n"
        sock.sendall(command)
        await frame()  # warm the path once, outside the clock, as bench_api does
        cpu = time.process_time()
        start = time.perf_counter()
        for _ in range(calls):
            sock.sendall(command)
            await frame()
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    finally:
        sock.close()
    return {"count": calls, "seconds": seconds, "rate": calls / seconds, "cpu": cpu / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description="genesis_trio side of the benchmarks")
    parser.add_argument("bench", choices=["consumer", "raw", "api-seq", "api-conc", "api-floor"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--format", dest="event_format", choices=["plain", "json"])
    parser.add_argument("--names", default="", help="comma-separated handler event names")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--event-hook", help="'noop' or module:attr, an (Event) -> None")
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="Consumer(concurrent=False): one in-order worker per handler, no task per event",
    )
    parser.add_argument(
        "--read-headers", action="store_true", help="the handler reads three headers per event"
    )
    parser.add_argument(
        "--otel", action="store_true", help="configure the OpenTelemetry SDK (install_sdk)"
    )
    args = parser.parse_args()
    exported_spans = install_sdk() if args.otel else None
    hook = load_hook(args.event_hook)
    fmt: EventFormat = "json" if args.event_format == "json" else "plain"

    job: Callable[[], Awaitable[dict[str, Any]]]
    if args.bench == "consumer":
        names = [n for n in args.names.split(",") if n]
        concurrent = not args.sequential
        job = lambda: bench_consumer(  # noqa: E731
            args.port,
            fmt,
            names,
            args.events,
            hook,
            concurrent=concurrent,
            read_headers=args.read_headers,
        )
    elif args.bench == "raw":
        job = lambda: bench_raw(args.port, fmt, args.events, hook)  # noqa: E731
    elif args.bench == "api-floor":
        if args.backend != "trio":
            parser.error("api-floor runs on trio")
        job = lambda: bench_api_floor(args.port, args.calls)  # noqa: E731
    else:
        concurrency = 1 if args.bench == "api-seq" else args.concurrency
        job = lambda: bench_api(args.port, args.calls, concurrency)  # noqa: E731

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(args.timeout):
            return await job()

    result = anyio.run(bounded, backend=args.backend)
    if exported_spans is not None:
        result["spans"] = exported_spans()
    result["library"] = (
        "none (a trio socket only)"
        if args.bench == "api-floor"
        else f"genesis_trio {genesis_trio.__version__} ({args.backend})"
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
