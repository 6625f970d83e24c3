"""Soak: many sequential calls through one process, watching its memory.

    uv run python -m benchmarks.soak                          # fake switch, 100,000 calls per row
    uv run python -m benchmarks.soak --calls 2000 --paths inbound --sdk off
    uv run python -m benchmarks.soak --switch real            # the bundle's FreeSWITCH, 5,000 calls
    uv run python -m benchmarks.soak --tracemalloc            # name the allocation sites that grew

Two paths, each with the OpenTelemetry SDK off (the default: API only) and on
(a ``TracerProvider`` with a ``BatchSpanProcessor`` feeding an exporter that
drops everything, and a ``MeterProvider`` with an in-memory reader):

* ``inbound``: one ``Inbound`` connection; per call ``Channel.create`` (a
  destination that answers at once) → ``playback`` → ``hangup``.
* ``outbound``: one ``Outbound`` server; per call the switch opens a socket to
  it (fake: its ``call_socket``, asked for through a scripted api command;
  real: ``originate {outbound_port=N}loopback/9000/default &park()``) and the
  handler answers, plays and hangs up.

Every row runs in a fresh worker process (so rows never share heap or
providers) against a switch in another process (so the switch's own memory is
not counted). The worker prints RSS and the live-object count (after a full
``gc.collect()``) every 10% of the calls; growth per call is measured from the
end of the warm-up (the first 10%) to the end. Nothing asserts: it reports.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FREESWITCH_HOME = Path.home() / ".cache" / "genesis-trio" / "freeswitch"

FAKE_DIAL_PATH = "user/soak"
REAL_DIAL_PATH = "loopback/9002/default"
FAKE_MEDIA = "silence_stream://10"
REAL_MEDIA = "silence_stream://20"
CALL_SOCKET_API = "soak_call_socket"
PASSWORD = "ClueCon"


# --------------------------------------------------------------------- measuring


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclass(frozen=True)
class Sample:
    calls: int
    rss_kib: int
    objects: int
    seconds: float
    #: Memory blocks the interpreter has allocated (strings and bytes included,
    #: which the live-object count, GC-tracked containers only, leaves out).
    blocks: int = 0


def take_sample(calls: int, started: float, flush: Callable[[], None] | None) -> Sample:
    if flush is not None:
        flush()
    gc.collect()
    return Sample(
        calls,
        rss_kib(),
        len(gc.get_objects()),
        time.perf_counter() - started,
        sys.getallocatedblocks(),
    )


def emit(kind: str, **fields: Any) -> None:
    print(json.dumps({"kind": kind, **fields}), flush=True)


# ----------------------------------------------------------------- the SDK row


@dataclass(frozen=True)
class Sdk:
    flush: Callable[[], None]
    shutdown: Callable[[], None]


def install_sdk() -> Sdk:
    """Global SDK providers whose spans and metrics go nowhere."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class DroppingExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    def flush() -> None:
        # The batch processor holds up to 2,048 finished spans between exports:
        # empty it (and collect the metrics) so a sample counts what stays.
        tracer_provider.force_flush()
        reader.get_metrics_data()

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return Sdk(flush, shutdown)


# ------------------------------------------------------------------ the worker


async def run_worker(args: argparse.Namespace) -> None:
    import trio

    from genesis_trio import Channel, Inbound, Outbound, Session

    sdk = install_sdk() if args.sdk == "on" else None
    flush = None if sdk is None else sdk.flush
    real = args.switch == "real"
    dial_path = REAL_DIAL_PATH if real else FAKE_DIAL_PATH
    media = REAL_MEDIA if real else FAKE_MEDIA
    checkpoints = {max(1, round(args.calls * step / 10)) for step in range(1, 11)}
    warmup = max(1, round(args.calls * args.warmup))
    checkpoints.add(warmup)

    snapshot: Any = None
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(8)

    samples: list[Sample] = []
    started = time.perf_counter()

    def checkpoint(done: int) -> None:
        nonlocal snapshot
        if done not in checkpoints:
            return
        sample = take_sample(done, started, flush)
        samples.append(sample)
        emit("sample", **sample.__dict__)
        if args.tracemalloc and done == warmup:
            import tracemalloc

            snapshot = tracemalloc.take_snapshot()

    samples.append(take_sample(0, started, flush))
    emit("sample", **samples[0].__dict__)

    async with Inbound(args.host, args.port, PASSWORD, timeout=30) as client:
        if args.path == "inbound":
            for done in range(1, args.calls + 1):
                channel = await Channel.create(client, dial_path, timeout=30)
                await channel.playback(media, timeout=30)
                await channel.hangup(timeout=30)
                checkpoint(done)
        else:
            finished_send, finished = trio.open_memory_channel[None](1)

            async def handler(session: Session) -> None:
                try:
                    await session.channel.answer(timeout=30)
                    await session.channel.playback(media, timeout=30)
                    await session.channel.hangup(timeout=30)
                finally:
                    # The session is over for the handler; the server closes
                    # it after the handler returns, which is part of the call.
                    await finished_send.send(None)

            app = Outbound(handler, "127.0.0.1", 0)
            async with trio.open_nursery() as nursery:
                _, port = await nursery.start(app.serve)
                for done in range(1, args.calls + 1):
                    with trio.fail_after(30):
                        if real:
                            await client.bgapi(
                                f"originate {{outbound_port={port}}}loopback/9000/default &park()"
                            )
                        else:
                            await client.api(f"{CALL_SOCKET_API} 127.0.0.1:{port}")
                        await finished.receive()
                    checkpoint(done)
                nursery.cancel_scope.cancel()

    if sdk is not None:
        sdk.shutdown()

    if snapshot is not None:
        import tracemalloc

        gc.collect()
        after = tracemalloc.take_snapshot()
        top = after.compare_to(snapshot, "traceback")[: args.tracemalloc_top]
        for stat in top:
            emit(
                "growth",
                size_diff=stat.size_diff,
                count_diff=stat.count_diff,
                where=[str(frame) for frame in stat.traceback.format()[-16:]],
            )


# ------------------------------------------------------------- the fake switch


async def run_fake_switch(args: argparse.Namespace) -> None:
    import trio

    from genesis_trio.testing import Destination, FakeFreeSWITCH

    fake = FakeFreeSWITCH(PASSWORD)
    fake.add_destination(FAKE_DIAL_PATH, Destination(answer_after=0))
    fake.set_media_duration(FAKE_MEDIA, 0)
    calls = 0

    async def call_socket(arguments: str) -> str:
        nonlocal calls
        host, _, port = arguments.strip().rpartition(":")
        channel = await fake.call_socket((host, int(port)))
        calls += 1
        if calls % 1000 == 0:
            forget_history(fake)
        return f"+OK {channel.uuid}\n"

    fake.register_api(CALL_SOCKET_API, call_socket)
    async with fake.running():
        print(fake.port, flush=True)
        # Forget ended channels now and then: the fake's history is for tests
        # and would otherwise grow for the whole soak (in this process only).
        while True:
            await trio.sleep(1)
            forget_history(fake)


def forget_history(fake: Any) -> None:
    for name in ("_history", "_commands", "_messages"):
        getattr(fake, name).clear()


# --------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def fake_switch() -> Iterator[tuple[str, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.soak", "fake-switch"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def real_switch() -> Iterator[tuple[str, int]]:
    run = FREESWITCH_HOME / "bin" / "run-freeswitch"
    stop = FREESWITCH_HOME / "bin" / "stop-freeswitch"
    if not run.exists():
        raise SystemExit(f"no FreeSWITCH bundle at {FREESWITCH_HOME} (see ../shared/freeswitch)")
    instance = tempfile.mkdtemp(prefix="genesis-trio-soak-")
    esl_port, sip_port = free_port(), free_port()
    subprocess.run(
        [str(run), instance, "--esl-port", str(esl_port), "--sip-port", str(sip_port)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield "127.0.0.1", esl_port
    finally:
        subprocess.run([str(stop), instance], check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(instance, ignore_errors=True)


@dataclass(frozen=True)
class Row:
    path: str
    sdk: str
    calls: int
    samples: list[Sample]
    warmup: int
    wall: float

    def at(self, calls: int) -> Sample:
        return next(sample for sample in self.samples if sample.calls == calls)

    @property
    def kib_per_call(self) -> float:
        first, last = self.at(self.warmup), self.samples[-1]
        return (last.rss_kib - first.rss_kib) / max(1, last.calls - first.calls)

    @property
    def objects_per_call(self) -> float:
        first, last = self.at(self.warmup), self.samples[-1]
        return (last.objects - first.objects) / max(1, last.calls - first.calls)


def run_row(args: argparse.Namespace, host: str, port: int, path: str, sdk: str) -> Row:
    command = [
        sys.executable,
        "-m",
        "benchmarks.soak",
        "worker",
        "--switch", args.switch,
        "--host", host,
        "--port", str(port),
        "--path", path,
        "--sdk", sdk,
        "--calls", str(args.calls),
        "--warmup", str(args.warmup),
    ]  # fmt: skip
    if args.tracemalloc:
        command += ["--tracemalloc", "--tracemalloc-top", str(args.tracemalloc_top)]
    print(f"\n== {path}, SDK {sdk}, {args.calls:,} calls ({args.switch} switch)", flush=True)
    print(f"{'calls':>9} {'RSS MB':>8} {'objects':>9} {'blocks':>9} {'seconds':>8}", flush=True)
    samples: list[Sample] = []
    began = time.perf_counter()
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as worker:
        assert worker.stdout is not None
        for line in worker.stdout:
            record = json.loads(line)
            kind = record.pop("kind")
            if kind == "sample":
                sample = Sample(**record)
                samples.append(sample)
                print(
                    f"{sample.calls:>9,} {sample.rss_kib / 1024:>8.1f} {sample.objects:>9,}"
                    f" {sample.blocks:>9,} {sample.seconds:>8.1f}",
                    flush=True,
                )
            elif kind == "growth":
                print(
                    f"  +{record['size_diff'] / 1024:.1f} KiB in {record['count_diff']} blocks:",
                    flush=True,
                )
                for frame in record["where"]:
                    print(f"    {frame}", flush=True)
    if worker.returncode != 0:
        raise SystemExit(f"worker for {path}/{sdk} failed with {worker.returncode}")
    warmup = max(1, round(args.calls * args.warmup))
    row = Row(path, sdk, args.calls, samples, warmup, time.perf_counter() - began)
    print(
        f"growth after warm-up: {row.kib_per_call:.4f} KiB/call, "
        f"{row.objects_per_call:.4f} objects/call; wall {row.wall:.0f} s",
        flush=True,
    )
    return row


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| path | SDK | calls | RSS at warm-up → end (MB) | objects at warm-up → end "
        "| KiB/call | objects/call | calls/s |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        first, last = row.at(row.warmup), row.samples[-1]
        rate = (last.calls - first.calls) / max(1e-9, last.seconds - first.seconds)
        lines.append(
            f"| {row.path} | {row.sdk} | {row.calls:,} "
            f"| {first.rss_kib / 1024:.1f} → {last.rss_kib / 1024:.1f} "
            f"| {first.objects:,} → {last.objects:,} "
            f"| {row.kib_per_call:.4f} | {row.objects_per_call:.4f} | {rate:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    worker = sub.add_parser("worker")
    worker.add_argument("--switch", choices=["fake", "real"], required=True)
    worker.add_argument("--host", required=True)
    worker.add_argument("--port", type=int, required=True)
    worker.add_argument("--path", choices=["inbound", "outbound"], required=True)
    worker.add_argument("--sdk", choices=["off", "on"], required=True)
    worker.add_argument("--calls", type=int, required=True)
    worker.add_argument("--warmup", type=float, default=0.1)
    worker.add_argument("--tracemalloc", action="store_true")
    worker.add_argument("--tracemalloc-top", type=int, default=10)
    sub.add_parser("fake-switch")
    parser.add_argument("--switch", choices=["fake", "real"], default="fake")
    parser.add_argument(
        "--calls", type=int, help="calls per row (default 100,000 fake, 5,000 real)"
    )
    parser.add_argument("--paths", default="inbound,outbound")
    parser.add_argument("--sdk", default="off,on")
    parser.add_argument(
        "--warmup", type=float, default=0.1, help="fraction of the calls that warms up"
    )
    parser.add_argument("--tracemalloc", action="store_true", help="show what grew (slow)")
    parser.add_argument("--tracemalloc-top", type=int, default=10)
    args = parser.parse_args(argv)

    if args.role in ("worker", "fake-switch"):
        import trio

        trio.run(run_worker if args.role == "worker" else run_fake_switch, args)
        return

    if args.calls is None:
        args.calls = 5_000 if args.switch == "real" else 100_000
    rows: list[Row] = []
    began = time.perf_counter()
    with fake_switch() if args.switch == "fake" else real_switch() as (host, port):
        for path in args.paths.split(","):
            for sdk in args.sdk.split(","):
                rows.append(run_row(args, host, port, path, sdk))
    print(f"\n{table(rows)}\n\ntotal wall time {time.perf_counter() - began:.0f} s", flush=True)
    if os.environ.get("SOAK_JSON"):
        Path(os.environ["SOAK_JSON"]).write_text(
            json.dumps(
                [{**row.__dict__, "samples": [s.__dict__ for s in row.samples]} for row in rows]
            )
        )


if __name__ == "__main__":
    main()
