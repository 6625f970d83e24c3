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
from contextlib import ExitStack, contextmanager
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
    target: float | None = None  # --targets: the ratio aimed at, SDK off
    target_on: float | None = None  # ... and with the SDK on (--otel)
    needs_names: str | None = None  # event format whose recorded names become handlers
    # No library in it (benchmarks.ours api-floor): shown for scale against `peer_of`'s
    # Genesis samples, with the SDK off only, and left out of the chart.
    reference: bool = False


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "consumer-plain",
        "Consumer, plain (concurrent handlers, the default)",
        "events/s",
        ("consumer", "--format", "plain"),
        ("consumer", "--format", "plain"),
        target=4.0,
        target_on=3.5,
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
        target_on=3.5,
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
        target_on=3.5,
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
        target_on=3.5,
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
        target=2.0,
        target_on=1.5,
    ),
    Benchmark(
        "api-conc",
        "api status, {concurrency} concurrent tasks",
        "calls/s",
        ("api-conc",),
        ("api-conc",),
        target_on=4.0,
    ),
    Benchmark(
        "api-floor",
        "api status, sequential: floor, no library",
        "calls/s",
        ("api-floor",),
        None,
        peer_of="api-seq",
        reference=True,
    ),
)


@dataclass
class Row:
    benchmark: Benchmark
    ours: list[dict[str, Any]] = field(default_factory=list)
    peer: list[dict[str, Any]] = field(default_factory=list)
    source_cpu: list[float] = field(default_factory=list)
    # --otel: the same benchmark with the OpenTelemetry SDK configured on both sides.
    ours_on: list[dict[str, Any]] = field(default_factory=list)
    peer_on: list[dict[str, Any]] = field(default_factory=list)
    source_cpu_on: list[float] = field(default_factory=list)

    def samples(self, side: str, sdk: bool, rows_by_key: dict[str, Row]) -> list[dict[str, Any]]:
        """``side`` is "ours" or "peer"; a row without its own Genesis run borrows one."""
        if sdk and self.benchmark.reference:
            return []
        if side == "ours":
            return self.ours_on if sdk else self.ours
        own = self.peer_on if sdk else self.peer
        if own or self.benchmark.peer is not None or self.benchmark.peer_of not in rows_by_key:
            return own
        owner = rows_by_key[str(self.benchmark.peer_of)]
        return owner.peer_on if sdk else owner.peer


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

BARE_LABEL = "bare-SDK limit: our spans+metrics, no library"
BARE_API_LABEL = "bare-SDK limit, api: our span+metrics per call"


def _bare_kind(bare: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The bare-SDK samples of one kind: "events" (per event) or "api" (per api call)."""
    return [s for s in bare if s.get("kind", "events") == kind]


REAL_SWITCH_JSON = ROOT / "benchmarks" / "results" / "real_switch.json"
DEFAULT_PLOT = ROOT / "docs" / "benchmarks.png"


def _fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(ours: float | None, peer: float | None) -> float | None:
    return None if ours is None or peer is None or not peer else ours / peer


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


@dataclass(frozen=True)
class Cells:
    """The medians of one row with the SDK off or on."""

    ours: float | None
    peer: float | None
    ours_per_cpu: float | None
    peer_per_cpu: float | None
    ours_cpu: float | None
    peer_cpu: float | None

    @property
    def ratio(self) -> float | None:
        return _ratio(self.ours, self.peer)

    @property
    def per_cpu_ratio(self) -> float | None:
        return _ratio(self.ours_per_cpu, self.peer_per_cpu)


def cells(row: Row, sdk: bool, rows_by_key: dict[str, Row]) -> Cells:
    ours, peer = row.samples("ours", sdk, rows_by_key), row.samples("peer", sdk, rows_by_key)
    return Cells(
        median_rate(ours),
        median_rate(peer),
        median_per_cpu(ours),
        median_per_cpu(peer),
        median_rate(ours, "cpu"),
        median_rate(peer, "cpu"),
    )


def _verdict(target: float | None, ratio: float | None) -> str:
    if target is None:
        return ""
    if ratio is None:
        return f">={target:g}x"
    return f">={target:g}x {'ok' if ratio >= target else 'MISS'}"


def render_table(
    rows: list[Row],
    rows_by_key: dict[str, Row],
    meta: dict[str, Any],
    bare: list[dict[str, Any]] | None = None,
    *,
    targets: bool = False,
) -> str:
    if meta.get("otel"):
        return _render_otel(rows, rows_by_key, meta, bare or [], targets)
    header = (
        f"{'benchmark':<50} {'genesis_trio':>13} {'Genesis':>11} {'ratio':>7} "
        + (f"{'target':>10} " if targets else "")
        + f"{'per-CPU':>8} {'CPU us/them':>12} {'source':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        off = cells(row, False, rows_by_key)
        cpu = (
            "-"
            if off.ours_cpu is None or off.peer_cpu is None
            else f"{off.ours_cpu:.0%}/{off.peer_cpu:.0%}"
        )
        source = median_rate([{"rate": s} for s in row.source_cpu])
        target = f"{_verdict(row.benchmark.target, off.ratio) or '-':>10} " if targets else ""
        lines.append(
            f"{_label(row, meta):<50} {_fmt_rate(off.ours):>13} {_fmt_rate(off.peer):>11} "
            f"{_fmt_ratio(off.ratio):>7} {target}{_fmt_ratio(off.per_cpu_ratio):>8} "
            f"{cpu:>12} {'-' if source is None else f'{source:.0%}':>7}"
        )
    lines.append("")
    lines.extend(footnotes(rows, meta, bare))
    return "\n".join(lines)


def _label(row: Row, meta: dict[str, Any]) -> str:
    label = row.benchmark.label.format(concurrency=meta["concurrency"])
    if not any("rate" in s for s in row.ours) and any("error" in s for s in row.ours):
        label += " [FAILED]"
    return label


def _render_otel(
    rows: list[Row],
    rows_by_key: dict[str, Row],
    meta: dict[str, Any],
    bare: list[dict[str, Any]],
    targets: bool,
) -> str:
    bare_api = _bare_kind(bare, "api")
    bare = _bare_kind(bare, "events")
    limit = median_rate(bare)
    limit_per_cpu = median_per_cpu(bare)
    limit_api_per_cpu = median_per_cpu(bare_api)
    top = (
        f"{'':<50} {'--------------- SDK off ---------------':>40}  "
        f"{'--------------- SDK on ----------------':>40}"
    )
    header = (
        f"{'benchmark':<50} "
        f"{'genesis_trio':>12} {'Genesis':>9} {'ratio':>8} {'per-CPU':>8}  "
        f"{'genesis_trio':>12} {'Genesis':>9} {'ratio':>8} {'per-CPU':>8}  {'limit/us':>8}"
        + (f"  {'targets (off; on)':<26}" if targets else "")
    )
    lines = [top, header, "-" * len(header)]
    for row in rows:
        off, on = cells(row, False, rows_by_key), cells(row, True, rows_by_key)
        of_limit = _ratio(
            limit_per_cpu if row.benchmark.unit == "events/s" else limit_api_per_cpu,
            on.ours_per_cpu,
        )
        verdicts = ""
        if targets:
            verdicts = "  " + "; ".join(
                v or "-"
                for v in (
                    _verdict(row.benchmark.target, off.per_cpu_ratio),
                    _verdict(row.benchmark.target_on, on.per_cpu_ratio),
                )
            )
        lines.append(
            f"{_label(row, meta):<50} "
            f"{_fmt_rate(off.ours):>12} {_fmt_rate(off.peer):>9} {_fmt_ratio(off.ratio):>8} "
            f"{_fmt_ratio(off.per_cpu_ratio):>8}  "
            f"{_fmt_rate(on.ours):>12} {_fmt_rate(on.peer):>9} {_fmt_ratio(on.ratio):>8} "
            f"{_fmt_ratio(on.per_cpu_ratio):>8}  {_fmt_ratio(of_limit):>8}{verdicts}"
        )
    if bare:
        lines.append(
            f"{BARE_LABEL:<50} {'':>12} {'':>9} {'':>8} {'':>8}  "
            f"{_fmt_rate(limit):>12} {'':>9} {'':>8} {'':>8}  {'1.00x':>8}"
        )
    if bare_api:
        lines.append(
            f"{BARE_API_LABEL:<50} {'':>12} {'':>9} {'':>8} {'':>8}  "
            f"{_fmt_rate(median_rate(bare_api)):>12} {'':>9} {'':>8} {'':>8}  {'1.00x':>8}"
        )
    lines.append("")
    lines.extend(footnotes(rows, meta, bare + bare_api))
    return "\n".join(lines)


def footnotes(
    rows: list[Row], meta: dict[str, Any], bare: list[dict[str, Any]] | None = None
) -> list[str]:
    otel = bool(meta.get("otel"))
    sdk = (
        "SDK off: no OpenTelemetry SDK on either side (API only). SDK on: both processes first "
        "configure the OpenTelemetry SDK globally with the same code (install_sdk in "
        "benchmarks/ours.py and peer_genesis.py): a TracerProvider with a BatchSpanProcessor "
        "whose exporter drops every span, and a MeterProvider with an in-memory reader; "
        f"{meta.get('otel_events', 0):,} events / {meta.get('otel_calls', 0):,} api calls per "
        "SDK-on sample."
        if otel
        else "no OpenTelemetry SDK on either."
    )
    notes = [
        f"Median of {meta['repeat']} samples per cell; events: {meta['events']:,} per sample "
        f"(the {meta['recorded']['plain']}-event plain / {meta['recorded']['json']}-event json "
        "recorded lifecycle, cycled), timed first -> last event at the handler; api: "
        f"{meta['calls']:,} 'api status' calls per sample.",
        f"genesis_trio {meta['ours_version']} on {meta['backend']}; Genesis {meta['peer_version']} "
        f"on asyncio's default loop; Python {meta['python']}; {sdk}",
        "ratio = genesis_trio / Genesis (wall clock). per-CPU = the same ratio of events per "
        "CPU-second of each client process (steadier when other work shares the machine)."
        + (
            ""
            if otel
            else " CPU us/them = each client's CPU use during its window; source = the event "
            "source process's CPU over the window (it is not the bottleneck while well under "
            "100%)."
        ),
    ]
    if otel and bare:
        replayed = next(
            (s["replayed"] for s in _bare_kind(bare, "events") if "replayed" in s), None
        )
        if replayed is not None:
            notes.append(
                "bare-SDK limit (benchmarks/bare_sdk.py): first measures what genesis_trio "
                "records for each recorded plain event (through a connection's telemetry, "
                f"with an in-memory exporter): {replayed['spans_per_event']:.2f} spans, "
                f"{replayed['attributes_per_event']:.1f} attributes, "
                f"{replayed['span_events_per_event']:.2f} span events and "
                f"{replayed['metric_calls_per_event']:.2f} metric calls per event on average; "
                "then replays exactly those (start_span with prebuilt attributes, add_event, "
                "end, add/record) on the same SDK set-up with no library around them. "
                "limit/us = its events per CPU-second / ours with the SDK on (1.00x: we add "
                "nothing to the SDK's own cost)."
            )
        api = next((s["replayed"] for s in _bare_kind(bare, "api") if "replayed" in s), None)
        if api is not None:
            notes.append(
                "bare-SDK limit, api (benchmarks/bare_sdk.py --api): the same for one "
                "'api status' round trip: what a connection's telemetry records for the "
                f"recorded reply ({api['spans_per_call']} send_command span, "
                f"{api['attributes_per_call']} attributes, {api['metric_calls_per_call']} "
                "metric calls), replayed per call (start_span with the attributes known "
                "before the reply, set_attribute for the reply's, end, add/record). limit/us "
                "of the api rows = its calls per CPU-second / ours with the SDK on."
            )
    notes += [
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
    if "api-floor" in medians and "api-seq" in medians:
        floor = median_per_cpu(medians["api-floor"].ours)
        ours = median_per_cpu(medians["api-seq"].ours)
        peer = median_per_cpu(medians["api-seq"].peer)
        if floor and ours and peer:
            notes.append(
                "floor (benchmarks/ours.py api-floor): sequential 'api status' with no "
                "library, on trio: a non-blocking socket, send, wait_readable, recv until the "
                "header block and its Content-Length body are in (bytes.find); no message "
                "parsing, one task. CPU per call: floor "
                f"{1e6 / floor:.0f} us, genesis_trio {1e6 / ours:.0f} us, Genesis "
                f"{1e6 / peer:.0f} us (SDK off). Its ratio column is floor / Genesis."
            )
    if meta.get("ceiling"):
        ceiling = meta["ceiling"]
        notes.append(
            f"Source ceiling: a client that only reads bytes gets {ceiling['rate'] / 1e6:,.0f} "
            f"MB/s = {ceiling['events_rate']:,.0f} plain events/s from the same source."
        )
    failed = []
    for row in rows:
        for side, samples in (
            ("ours", row.ours),
            ("Genesis", row.peer),
            ("ours, SDK on", row.ours_on),
            ("Genesis, SDK on", row.peer_on),
        ):
            failed += [
                f"{row.benchmark.key} ({side}): {s['error']}" for s in samples if "error" in s
            ]
    failed += [f"bare-sdk: {s['error']}" for s in bare or [] if "error" in s]
    notes.extend(f"FAILED {line}" for line in dict.fromkeys(failed))
    return [f"[{i}] {note}" for i, note in enumerate(notes, 1)]


# --- the chart -----------------------------------------------------------------------
# benchmarks/real_switch.py (the real-FreeSWITCH benchmarks) writes REAL_SWITCH_JSON with
# --json: {"rows": [{"key", "label", "ours", "genesis", "ratio", "unit", "better"}, ...]},
# where "ratio" is how many times better genesis_trio is (ours/genesis for "better":
# "higher", genesis/ours for "lower") and null where it means nothing (FreeSWITCH's own
# CPU). The chart shows every row with a ratio.


def real_switch_ratios(path: Path = REAL_SWITCH_JSON) -> list[tuple[str, float]]:
    """(label, ratio) pairs from the real-switch results, if that file exists."""
    if not path.is_file():
        return []
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    entries = document.get("rows") or document.get("results") or []
    found: list[tuple[str, float]] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        label = entry.get("label") or entry.get("benchmark") or entry.get("key")
        ratio = entry.get("ratio")
        better = entry.get("better")
        if ratio is None and better in ("higher", "lower"):
            ours, genesis = entry.get("ours"), entry.get("genesis")
            if (
                isinstance(ours, int | float)
                and isinstance(genesis, int | float)
                and ours > 0
                and genesis > 0
            ):
                ratio = ours / genesis if better == "higher" else genesis / ours
        if label and isinstance(ratio, int | float) and ratio > 0:
            found.append((str(label), float(ratio)))
    return found


def plot(
    path: Path,
    rows: list[Row],
    rows_by_key: dict[str, Row],
    meta: dict[str, Any],
    real_switch: list[tuple[str, float]],
) -> None:
    """Horizontal bars: genesis_trio / Genesis per row (per-CPU), SDK off and on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    times = FuncFormatter(lambda value, _: f"{value:g}x")
    rows = [row for row in rows if not row.benchmark.reference]

    labels = [_label(row, meta) for row in rows]
    off = [cells(row, False, rows_by_key).per_cpu_ratio for row in rows]
    on = [cells(row, True, rows_by_key).per_cpu_ratio for row in rows]
    show_on = any(value is not None for value in on)
    panels = 2 if real_switch else 1
    heights = [len(rows) * (0.55 if show_on else 0.35) + 1.0, len(real_switch) * 0.35 + 1.0]
    figure, axes = plt.subplots(
        panels,
        1,
        figsize=(10, sum(heights[:panels]) + 0.8),
        gridspec_kw={"height_ratios": heights[:panels]},
        squeeze=False,
    )
    bar = 0.38 if show_on else 0.7
    ax = axes[0][0]
    positions = list(range(len(rows)))
    series = [("SDK off", off, "#4C72B0", -bar / 2 if show_on else 0.0)]
    if show_on:
        series.append(("SDK on (TracerProvider + MeterProvider)", on, "#DD8452", bar / 2))
    for name, values, colour, shift in series:
        ys = [p + shift for p, v in zip(positions, values, strict=True) if v is not None]
        xs = [v for v in values if v is not None]
        ax.barh(ys, xs, height=bar, color=colour, label=name)
        for y, x in zip(ys, xs, strict=True):
            ax.text(x * 1.03, y, f"{x:.1f}x", va="center", fontsize=8)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(times)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("genesis_trio / Genesis, per CPU-second (log scale; 1x = parity)")
    ax.set_title(
        f"genesis_trio {meta['ours_version']} vs Genesis {meta['peer_version']}: "
        "same event source, same machine",
        fontsize=10,
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(right=max([v for v in off + on if v is not None] + [2.0]) * 1.6)
    if real_switch:
        ax2 = axes[1][0]
        names = [label for label, _ in real_switch]
        real_values = [ratio for _, ratio in real_switch]
        ax2.barh(
            range(len(real_values)),
            real_values,
            height=0.6,
            color="#55A868",
            label="real FreeSWITCH",
        )
        for y, x in enumerate(real_values):
            ax2.text(x * 1.03, y, f"{x:.1f}x", va="center", fontsize=8)
        ax2.set_yticks(range(len(names)), names, fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xscale("log")
        ax2.xaxis.set_major_formatter(times)
        ax2.axvline(1.0, color="black", linewidth=0.8)
        ax2.set_xlim(right=max([*real_values, 2.0]) * 1.6)
        ax2.set_xlabel("genesis_trio's advantage against a real FreeSWITCH (>1x: better)")
        ax2.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
    parser.add_argument(
        "--otel",
        action="store_true",
        help="also take every sample with the OpenTelemetry SDK on (both sides), "
        "and the bare-SDK limit",
    )
    parser.add_argument("--otel-events", type=int, default=10_000, help="events per SDK-on sample")
    parser.add_argument("--otel-calls", type=int, default=5_000, help="api calls per SDK-on sample")
    parser.add_argument(
        "--targets", action="store_true", help="add a column with the ratios aimed at"
    )
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument(
        "--plot",
        type=Path,
        nargs="?",
        const=DEFAULT_PLOT,
        help=f"write the chart (default {DEFAULT_PLOT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        help="print the table (and --plot) from a file written by --json, without running",
    )
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


def _sample_commands(
    args: argparse.Namespace,
    bench: Benchmark,
    source: dict[str, Any],
    *,
    otel: bool,
) -> list[tuple[str, list[str]]]:
    port = str(source["port"])
    events, calls = (args.otel_events, args.otel_calls) if otel else (args.events, args.calls)
    common = ["--events", str(events), "--calls", str(calls)]
    common += ["--concurrency", str(args.concurrency), "--timeout", str(args.timeout)]
    if otel:
        common.append("--otel")
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
    return commands


def _report(
    repeat: int, args: argparse.Namespace, key: str, who: str, sample: dict[str, Any]
) -> None:
    status = sample.get("error") or f"{sample['rate']:,.0f}"
    print(
        f"  [{repeat + 1}/{args.repeat}] {key:<20} {who:<22} {status}", file=sys.stderr, flush=True
    )


def take_bare_sample(events: int, timeout: float, *, api: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bare_sdk"]
    command += ["--api", "--calls", str(events)] if api else ["--events", str(events)]
    sample, _ = take_sample(command, timeout, os.getpid())
    return sample


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.from_json:
        replay(args)
        return
    benchmarks = selected(args)
    wanted = set(args.only.split(",")) if args.only else {b.key for b in benchmarks}
    peer_version = "-" if args.no_peer else ensure_peer(args.peer_spec, args.upgrade_peer)
    from genesis_trio import __version__ as ours_version

    rows = [Row(b) for b in benchmarks]
    rows_by_key = {row.benchmark.key: row for row in rows}
    bare: list[dict[str, Any]] = []
    meta: dict[str, Any] = {
        "events": args.events,
        "calls": args.calls,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "hook": args.event_hook,
        "backend": args.backend,
        "otel": args.otel,
        "otel_events": args.otel_events,
        "otel_calls": args.otel_calls,
        "ours_version": ours_version,
        "peer_version": peer_version,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    started = time.perf_counter()
    with ExitStack() as stack:
        source = stack.enter_context(event_source(args.events))
        source_on = stack.enter_context(event_source(args.otel_events)) if args.otel else None
        meta["recorded"] = source["recorded"]
        meta["names"] = len(source["names"]["plain"])
        plain_bytes = int(source["bytes"]["plain"])
        ceiling = drain_ceiling(int(source["port"]), plain_bytes)
        ceiling["events_rate"] = args.events / ceiling["seconds"]
        meta["ceiling"] = ceiling
        for repeat in range(args.repeat):
            for row in rows:
                bench = row.benchmark
                # Each side with the SDK off and on, the order alternating between repeats.
                jobs: list[tuple[str, bool, list[str], dict[str, Any]]] = [
                    (side, False, command, source)
                    for side, command in _sample_commands(args, bench, source, otel=False)
                ]
                if source_on is not None and not bench.reference:
                    jobs += [
                        (side, True, command, source_on)
                        for side, command in _sample_commands(args, bench, source_on, otel=True)
                    ]
                if repeat % 2:
                    jobs.reverse()
                for side, sdk, command, used in jobs:
                    sample, source_share = take_sample(command, args.timeout, int(used["pid"]))
                    if side == "ours":
                        (row.ours_on if sdk else row.ours).append(sample)
                        if source_share is not None:
                            (row.source_cpu_on if sdk else row.source_cpu).append(source_share)
                    else:
                        (row.peer_on if sdk else row.peer).append(sample)
                    who = ("genesis_trio" if side == "ours" else "Genesis") + (
                        ", SDK on" if sdk else ""
                    )
                    _report(repeat, args, bench.key, who, sample)
            if args.otel:
                sample = take_bare_sample(args.otel_events, args.timeout)
                bare.append(sample)
                _report(repeat, args, "bare-sdk", "SDK only", sample)
                if any(row.benchmark.unit == "calls/s" for row in rows):
                    sample = take_bare_sample(args.otel_calls, args.timeout, api=True)
                    bare.append(sample | {"kind": "api"})
                    _report(repeat, args, "bare-sdk-api", "SDK only", sample)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    shown = [row for row in rows if row.benchmark.key in wanted]
    print()
    print(render_table(shown, rows_by_key, meta, bare, targets=args.targets))
    print(f"\n(total {meta['seconds']} s on {meta['machine']})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document(shown, rows_by_key, meta, bare), indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        plot(args.plot, shown, rows_by_key, meta, real_switch_ratios())
        print(f"wrote {args.plot}")


def document(
    rows: list[Row], rows_by_key: dict[str, Row], meta: dict[str, Any], bare: list[dict[str, Any]]
) -> dict[str, Any]:
    """Everything a run measured (``--json``); ``--from-json`` reads it back."""
    results = []
    for row in rows:
        entry: dict[str, Any] = {
            "benchmark": row.benchmark.key,
            "unit": row.benchmark.unit,
            "ours": row.ours,
            "genesis": row.samples("peer", False, rows_by_key),
            "source_cpu": row.source_cpu,
            "median_ours": median_rate(row.ours),
            "median_genesis": median_rate(row.samples("peer", False, rows_by_key)),
        }
        if meta.get("otel"):
            entry |= {
                "ours_sdk": row.ours_on,
                "genesis_sdk": row.samples("peer", True, rows_by_key),
                "source_cpu_sdk": row.source_cpu_on,
                "median_ours_sdk": median_rate(row.ours_on),
                "median_genesis_sdk": median_rate(row.samples("peer", True, rows_by_key)),
            }
        results.append(entry)
    return {"meta": meta, "results": results, "bare_sdk": bare}


def replay(args: argparse.Namespace) -> None:
    """--from-json: the table and chart of an earlier run."""
    saved = json.loads(args.from_json.read_text())
    meta: dict[str, Any] = saved["meta"]
    by_key = {b.key: b for b in BENCHMARKS}
    rows = []
    for entry in saved["results"]:
        row = Row(by_key[entry["benchmark"]])
        row.ours, row.peer = entry.get("ours", []), entry.get("genesis", [])
        row.source_cpu = entry.get("source_cpu", [])
        row.ours_on, row.peer_on = entry.get("ours_sdk", []), entry.get("genesis_sdk", [])
        rows.append(row)
    rows_by_key = {row.benchmark.key: row for row in rows}
    bare = saved.get("bare_sdk", [])
    print(render_table(rows, rows_by_key, meta, bare, targets=args.targets))
    if args.plot:
        plot(args.plot, rows, rows_by_key, meta, real_switch_ratios())
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
