"""Run genesis_trio and Genesis side by side against the same event source.

    uv run python -m benchmarks.run                 # everything, ~3-4 minutes on 2 cores
    uv run python -m benchmarks.run --only raw-plain,raw-plain-hook --repeat 5
    uv run python -m benchmarks.run --json results.json

What happens: Genesis (PyPI ``genesis``) is installed once into
``benchmarks/.peer-venv`` with ``uv venv`` + ``uv pip install``; the event
source (:mod:`benchmarks.source`) starts in its own process; then for every
repeat and every benchmark one fresh genesis_trio process
(:mod:`benchmarks.ours`, on trio) and one fresh Genesis process
(``benchmarks/peer_genesis.py`` in the peer venv, default asyncio loop) each
take one sample, alternating which goes first. Each sample is timed from the
first event reaching the handler to the N-th (events), or around the whole
batch of ``api status`` calls. The table shows the median of the repeats.
Nothing here asserts on timings: it measures and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / "benchmarks" / ".peer-venv"
PEER_SCRIPT = ROOT / "benchmarks" / "peer_genesis.py"


@dataclass(frozen=True)
class Benchmark:
    key: str
    label: str
    unit: str
    ours: tuple[str, ...]
    peer: tuple[str, ...] | None  # None: compared with the Genesis samples of `peer_of`
    peer_of: str | None = None
    target: float | None = None
    needs_names: str | None = None  # event format whose recorded names become handlers


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "consumer-plain",
        "Consumer, plain (concurrent handlers, the default)",
        "events/s",
        ("consumer", "--format", "plain"),
        ("consumer", "--format", "plain"),
        target=4.0,
        needs_names="plain",
    ),
    Benchmark(
        "consumer-plain-seq",
        "Consumer, plain (concurrent=False)",
        "events/s",
        ("consumer", "--format", "plain", "--sequential"),
        None,
        peer_of="consumer-plain",
        target=4.0,
        needs_names="plain",
    ),
    Benchmark(
        "consumer-json",
        "Consumer, json (concurrent handlers, the default)",
        "events/s",
        ("consumer", "--format", "json"),
        ("consumer", "--format", "json"),
        target=8.0,
        needs_names="json",
    ),
    Benchmark(
        "consumer-json-seq",
        "Consumer, json (concurrent=False)",
        "events/s",
        ("consumer", "--format", "json", "--sequential"),
        None,
        peer_of="consumer-json",
        target=8.0,
        needs_names="json",
    ),
    Benchmark(
        "consumer-plain-read",
        "Consumer, plain, handler reads 3 headers",
        "events/s",
        ("consumer", "--format", "plain", "--read-headers"),
        ("consumer", "--format", "plain", "--read-headers"),
        target=4.0,
        needs_names="plain",
    ),
    Benchmark(
        "consumer-json-read",
        "Consumer, json, handler reads 3 headers",
        "events/s",
        ("consumer", "--format", "json", "--read-headers"),
        ("consumer", "--format", "json", "--read-headers"),
        target=8.0,
        needs_names="json",
    ),
    Benchmark(
        "raw-plain",
        "raw subscription, plain",
        "events/s",
        ("raw", "--format", "plain"),
        ("raw", "--format", "plain"),
        target=4.0,
    ),
    Benchmark(
        "raw-plain-hook",
        "raw subscription, plain, + event hook",
        "events/s",
        ("raw", "--format", "plain", "--event-hook", "{hook}"),
        None,
        peer_of="raw-plain",
    ),
    Benchmark(
        "raw-json",
        "raw subscription, json",
        "events/s",
        ("raw", "--format", "json"),
        ("raw", "--format", "json"),
        target=8.0,
    ),
    Benchmark(
        "api-seq",
        "api status, sequential",
        "calls/s",
        ("api-seq",),
        ("api-seq",),
    ),
    Benchmark(
        "api-conc",
        "api status, {concurrency} concurrent tasks",
        "calls/s",
        ("api-conc",),
        ("api-conc",),
    ),
)


@dataclass
class Row:
    benchmark: Benchmark
    ours: list[dict[str, Any]] = field(default_factory=list)
    peer: list[dict[str, Any]] = field(default_factory=list)
    source_cpu: list[float] = field(default_factory=list)


# --- the peer environment ----------------------------------------------------


def peer_python() -> Path:
    return PEER_VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_peer(spec: str, upgrade: bool) -> str:
    """Install Genesis into its own venv (once) and return its version."""
    python = peer_python()
    probe = [str(python), "-c", "import genesis; print(genesis.__version__)"]
    if python.exists() and not upgrade:
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode == 0:
            return found.stdout.strip()
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is needed to install Genesis into benchmarks/.peer-venv")
    if not python.exists():
        subprocess.run([uv, "venv", "--quiet", str(PEER_VENV)], check=True)
    install = [uv, "pip", "install", "--quiet", "--python", str(python), spec]
    subprocess.run([*install, "--upgrade"] if upgrade else install, check=True)
    return subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()


# --- the event source --------------------------------------------------------


@contextmanager
def event_source(events: int) -> Iterator[dict[str, Any]]:
    command = [sys.executable, "-m", "benchmarks.source", "--port", "0", "--events", str(events)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the event source did not start (see its error above)")
        ready: dict[str, Any] = json.loads(line)
        yield ready
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def drain_ceiling(port: int, expected_bytes: int) -> dict[str, Any]:
    """How fast the source delivers when the client only reads bytes (no parsing)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.recv(4096)  # auth/request
        sock.sendall(b"auth ClueCon\n\n")
        sock.recv(4096)
        sock.sendall(b"event plain ALL\n\n")
        reply = sock.recv(4096)
        received = len(reply.split(b"\n\n", 1)[1]) if b"\n\n" in reply else 0
        start = time.perf_counter()
        while received < expected_bytes:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
        seconds = time.perf_counter() - start
    return {"bytes": received, "seconds": seconds, "rate": received / seconds}


# --- samples -------------------------------------------------------------------


def take_sample(
    command: Sequence[str], timeout: float, source_pid: int
) -> tuple[dict[str, Any], float | None]:
    cpu_before = process_cpu_seconds(source_pid)
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 30, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout + 30:.0f} s"}, None
    cpu_after = process_cpu_seconds(source_pid)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {last_error_line(done.stderr)}"}, None
    sample: dict[str, Any] = json.loads(lines[-1])
    source_share = None
    if cpu_before is not None and cpu_after is not None and sample.get("seconds"):
        source_share = (cpu_after - cpu_before) / sample["seconds"]
    return sample, source_share


_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Cancelled|Overflow|Lost)\b.*")


def last_error_line(stderr: str) -> str:
    """The innermost exception line of a traceback (also inside exception groups)."""
    lines = [line.strip(" |+-") for line in stderr.splitlines()]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    return (errors or [line for line in lines if line] or ["(no output)"])[-1][:300]


def median_rate(samples: list[dict[str, Any]], key: str = "rate") -> float | None:
    values = [s[key] for s in samples if key in s]
    return statistics.median(values) if values else None


def median_per_cpu(samples: list[dict[str, Any]]) -> float | None:
    values = [s["rate"] / s["cpu"] for s in samples if s.get("cpu")]
    return statistics.median(values) if values else None


# --- output --------------------------------------------------------------------


def _fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _fmt_ratio(ours: float | None, peer: float | None) -> str:
    return "-" if ours is None or peer is None else f"{ours / peer:.2f}x"


def render_table(rows: list[Row], rows_by_key: dict[str, Row], meta: dict[str, Any]) -> str:
    header = (
        f"{'benchmark':<50} {'genesis_trio':>13} {'Genesis':>11} {'ratio':>7} "
        f"{'target':>10} {'per-CPU':>8} {'CPU us/them':>12} {'source':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        bench = row.benchmark
        peer_samples = row.peer if bench.peer is not None else rows_by_key[str(bench.peer_of)].peer
        ours, peer = median_rate(row.ours), median_rate(peer_samples)
        target = "-"
        if bench.target is not None:
            verdict = (
                ""
                if ours is None or peer is None
                else (" ok" if ours / peer >= bench.target else " MISS")
            )
            target = f">={bench.target:g}x{verdict}"
        ours_cpu, peer_cpu = median_rate(row.ours, "cpu"), median_rate(peer_samples, "cpu")
        cpu = "-" if ours_cpu is None or peer_cpu is None else f"{ours_cpu:.0%}/{peer_cpu:.0%}"
        source = median_rate([{"rate": s} for s in row.source_cpu])
        label = bench.label.format(concurrency=meta["concurrency"])
        errors = [s["error"] for s in row.ours if "error" in s]
        if errors and ours is None:
            label += " [FAILED]"
        lines.append(
            f"{label:<50} {_fmt_rate(ours):>13} {_fmt_rate(peer):>11} "
            f"{_fmt_ratio(ours, peer):>7} {target:>10} "
            f"{_fmt_ratio(median_per_cpu(row.ours), median_per_cpu(peer_samples)):>8} "
            f"{cpu:>12} {'-' if source is None else f'{source:.0%}':>7}"
        )
    lines.append("")
    lines.extend(footnotes(rows, meta))
    return "\n".join(lines)


def footnotes(rows: list[Row], meta: dict[str, Any]) -> list[str]:
    notes = [
        f"Median of {meta['repeat']} samples per cell; events: {meta['events']:,} per sample "
        f"(the {meta['recorded']['plain']}-event plain / {meta['recorded']['json']}-event json "
        "recorded lifecycle, cycled), timed first -> last event at the handler; api: "
        f"{meta['calls']:,} 'api status' calls per sample.",
        f"genesis_trio {meta['ours_version']} on {meta['backend']}; Genesis {meta['peer_version']} "
        f"on asyncio's default loop; Python {meta['python']}; no OpenTelemetry SDK on either.",
        "ratio = genesis_trio / Genesis (wall clock). per-CPU = the same ratio of events per "
        "CPU-second of each client process (steadier when other work shares the machine). "
        "CPU us/them = each client's CPU use during its window; source = the event source "
        "process's CPU over the window (it is not the bottleneck while well under 100%).",
        f"Consumer: one handler per recorded event name ({meta['names']} names; every event "
        "reaches a handler; the merged COMMAND/PRIVATE_COMMAND event is named COMMAND by "
        "genesis_trio, as FreeSWITCH's first Event-Name, and PRIVATE_COMMAND by a json dict). "
        "Genesis gets `events plain ALL` + one `filter Event-Name` per handler "
        "from Consumer.start; the source acknowledges filters without applying them, so "
        "both sides receive the same bytes.",
        "json, Genesis: its reader does not decode json (a json frame becomes an event "
        "holding only Content-Type/Content-Length with the JSON text as body, which no "
        "handler route matches) and Consumer.start hard-codes `events plain ALL`. So the "
        "Genesis json rows send `event json ALL` themselves and add a 5-line processor, first "
        "in Genesis's own event_processors chain, that json.loads the body into the event "
        "(_body -> .body); from there Genesis's routing, handler tasks and lifecycle "
        "processors run as for plain. Both sides therefore decode every json event fully.",
        "Genesis splits each event carrying `Event-Lock: true` into two handler calls (one per "
        "137 recorded plain events), so its handler count reaches N ~0.7% before N frames are "
        "parsed: a small advantage to Genesis in the plain rows.",
        "raw subscription: ours is `async with client.subscribe() as events: async for ...`; "
        "Genesis has no iterator, its catch-all is Inbound.on('*', handler) (a task per event). "
        f"'+ event hook' adds ESLConnection.add_event_hook({meta['hook']}) to ours; its "
        "Genesis column repeats raw-plain's.",
    ]
    medians = {row.benchmark.key: row for row in rows}
    for ours_key, peer_key in (("raw-json", "raw-plain"), ("consumer-json-seq", "consumer-plain")):
        if ours_key in medians and peer_key in medians:
            ours = median_rate(medians[ours_key].ours)
            peer = median_rate(medians[peer_key].peer)
            if ours is not None and peer is not None:
                notes.append(
                    f"For scale: {ours_key} (ours) / Genesis {peer_key} = {ours / peer:.2f}x, i.e. "
                    "our json path against what Genesis's Consumer does with the same events "
                    "(it only subscribes in plain)."
                )
    if meta.get("ceiling"):
        ceiling = meta["ceiling"]
        notes.append(
            f"Source ceiling: a client that only reads bytes gets {ceiling['rate'] / 1e6:,.0f} "
            f"MB/s = {ceiling['events_rate']:,.0f} plain events/s from the same source."
        )
    failed = [
        f"{row.benchmark.key} (ours): {sample['error']}"
        for row in rows
        for sample in row.ours
        if "error" in sample
    ] + [
        f"{row.benchmark.key} (Genesis): {sample['error']}"
        for row in rows
        for sample in row.peer
        if "error" in sample
    ]
    notes.extend(f"FAILED {line}" for line in dict.fromkeys(failed))
    return [f"[{i}] {note}" for i, note in enumerate(notes, 1)]


# --- main --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    keys = [b.key for b in BENCHMARKS]
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(keys)}")
    parser.add_argument("--events", type=int, default=30_000, help="events per sample")
    parser.add_argument("--calls", type=int, default=20_000, help="api calls per sample")
    parser.add_argument("--concurrency", type=int, default=50, help="tasks in api-conc")
    parser.add_argument("--repeat", type=int, default=3, help="samples per cell (median)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per sample")
    parser.add_argument(
        "--event-hook", default="noop", help="for *-hook rows: 'noop' or module:attr"
    )
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--no-peer", action="store_true", help="run genesis_trio only")
    parser.add_argument("--peer-spec", default="genesis", help="what to `uv pip install`")
    parser.add_argument("--upgrade-peer", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only.split(",")) - set(keys)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def selected(args: argparse.Namespace) -> list[Benchmark]:
    wanted = set(args.only.split(",")) if args.only else {b.key for b in BENCHMARKS}
    chosen = [b for b in BENCHMARKS if b.key in wanted]
    # A row compared with another row's Genesis samples needs that row's Genesis run.
    needed = {b.peer_of for b in chosen if b.peer_of}
    return [b for b in BENCHMARKS if b.key in wanted or b.key in needed]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    benchmarks = selected(args)
    wanted = set(args.only.split(",")) if args.only else {b.key for b in benchmarks}
    peer_version = "-" if args.no_peer else ensure_peer(args.peer_spec, args.upgrade_peer)
    from genesis_trio import __version__ as ours_version

    rows = [Row(b) for b in benchmarks]
    rows_by_key = {row.benchmark.key: row for row in rows}
    common = ["--events", str(args.events), "--calls", str(args.calls)]
    common += ["--concurrency", str(args.concurrency), "--timeout", str(args.timeout)]
    meta: dict[str, Any] = {
        "events": args.events,
        "calls": args.calls,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "hook": args.event_hook,
        "backend": args.backend,
        "ours_version": ours_version,
        "peer_version": peer_version,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    started = time.perf_counter()
    with event_source(args.events) as source:
        port, pid = str(source["port"]), int(source["pid"])
        meta["recorded"] = source["recorded"]
        meta["names"] = len(source["names"]["plain"])
        plain_bytes = int(source["bytes"]["plain"])
        ceiling = drain_ceiling(int(port), plain_bytes)
        ceiling["events_rate"] = args.events / ceiling["seconds"]
        meta["ceiling"] = ceiling
        for repeat in range(args.repeat):
            for row in rows:
                bench = row.benchmark
                names: list[str] = []
                if bench.needs_names:
                    names = ["--names", ",".join(source["names"][bench.needs_names])]
                ours_args = [a.format(hook=args.event_hook) for a in bench.ours]
                ours_cmd = [sys.executable, "-m", "benchmarks.ours", *ours_args, *names]
                ours_cmd += ["--port", port, "--backend", args.backend, *common]
                commands: list[tuple[str, list[str]]] = [("ours", ours_cmd)]
                if bench.peer is not None and not args.no_peer:
                    peer_cmd = [str(peer_python()), str(PEER_SCRIPT), *bench.peer, *names]
                    commands.append(("peer", [*peer_cmd, "--port", port, *common]))
                if repeat % 2:
                    commands.reverse()
                for side, command in commands:
                    sample, source_share = take_sample(command, args.timeout, pid)
                    (row.ours if side == "ours" else row.peer).append(sample)
                    if side == "ours" and source_share is not None:
                        row.source_cpu.append(source_share)
                    status = sample.get("error") or f"{sample['rate']:,.0f}"
                    print(
                        f"  [{repeat + 1}/{args.repeat}] {bench.key:<20} "
                        f"{'genesis_trio' if side == 'ours' else 'Genesis':<12} {status}",
                        file=sys.stderr,
                        flush=True,
                    )
    meta["seconds"] = round(time.perf_counter() - started, 1)
    shown = [row for row in rows if row.benchmark.key in wanted]
    print()
    print(render_table(shown, rows_by_key, meta))
    print(f"\n(total {meta['seconds']} s on {meta['machine']})")
    if args.json:
        document = {
            "meta": meta,
            "results": [
                {
                    "benchmark": row.benchmark.key,
                    "unit": row.benchmark.unit,
                    "target": row.benchmark.target,
                    "ours": row.ours,
                    "genesis": row.peer or rows_by_key[str(row.benchmark.peer_of)].peer,
                    "source_cpu": row.source_cpu,
                    "median_ours": median_rate(row.ours),
                    "median_genesis": median_rate(
                        row.peer or rows_by_key[str(row.benchmark.peer_of)].peer
                    ),
                }
                for row in shown
            ],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
