"""genesis_trio and Genesis side by side against a real FreeSWITCH; memory per connection.

    uv run python -m benchmarks.real_switch            # 10-15 min, mostly Genesis's Channel rows
    uv run python -m benchmarks.real_switch --calls 300 --concurrency 20 --repeat 3
    uv run python -m benchmarks.real_switch --only outbound,mem-outbound
    uv run python -m benchmarks.real_switch --json benchmarks/results/real_switch.json

It starts its own FreeSWITCH from the bundle (``~/.cache/genesis-trio/freeswitch``,
``$GENESIS_TRIO_FREESWITCH_BUNDLE`` overrides) on free random 127.0.0.1 ports
with ``--loglevel warning`` and stops it by its instance directory at the end,
also on errors. Genesis is installed into ``benchmarks/.peer-venv`` as
:mod:`benchmarks.run` does. Every sample is a fresh process: this module's
``ours`` role on trio, ``benchmarks/peer_genesis_real.py`` in the peer venv on
asyncio; the two alternate which goes first. Nothing asserts on timings.

Benchmarks (``--calls`` calls, ``--concurrency`` at a time, after one warm-up):

* ``inbound-channel``: one ``Inbound``; per call ``Channel.create(client,
  "loopback/9002/default")`` (answers at once) then ``channel.hangup()``.
  Genesis: its ``Channel.create`` / ``hangup`` (see peer_genesis_real.py for
  what each sends and waits for).
* ``inbound-raw``: ``bgapi originate {origination_uuid=U}loopback/9002/default
  &park()`` (its BACKGROUND_JOB awaited), ``api uuid_kill U``, then U's
  ``CHANNEL_HANGUP_COMPLETE`` from one event subscription.
* ``outbound``: an Outbound server whose handler answers, plays a 100 ms tone
  (``tone_stream://%(100,0,440)``) and hangs up; a separate dialer process
  (genesis_trio, the same for both sides) keeps ``--concurrency`` calls
  ``originate {outbound_port=N}loopback/9000/default &park()`` in flight. The
  window starts when the ``--warmup``-th handler returns. Handler latency is
  handler start -> return; setup latency is the b-leg's
  ``Caller-Channel-Created-Time`` -> handler start (socket, connect, myevents,
  linger).
* ``outbound-floor`` (ours only): the ``outbound`` exchange served by a bare trio
  socket server, no library (:func:`floor_outbound`): the floor under any
  library's CPU per session.
* ``mem-inbound``: RSS growth per idle ``Inbound`` connection, 1,000 of them, to
  the benchmark event source (:mod:`benchmarks.source`, which nobody asks for
  events), measured from the first connection to the last after ``gc.collect()``.
* ``mem-outbound``: RSS growth per live outbound session, 1,000 of them, whose
  handlers wait; the "switch" is a minimal peer process (``fake-peer`` role)
  that opens the sockets and answers ``connect`` with the recorded channel
  data (a fresh uuid each) and every other command with ``+OK``. The baseline
  is taken in the handler of a first call, alone, which returns at once; the
  other 1,000 are opened after it closed (20 connects at a time).

Each window reports the client's CPU (``/proc/self/stat``) and FreeSWITCH's
(``/proc/<pid>/stat``, all its threads), so one can see which side was the
bottleneck.

``--json FILE`` writes::

    {"rows": [{"key": "inbound-channel.cpu_ms", "label": "...", "ours": 1.9,
               "genesis": 4.1, "ratio": 2.16, "unit": "ms CPU/call",
               "better": "lower"}, ...],
     "meta": {...}, "samples": {"inbound-channel": {"ours": [...], "genesis": [...]}, ...}}

``ratio`` is always "how many times better genesis_trio is": ours / genesis
for ``"better": "higher"`` rows (rates), genesis / ours for ``"lower"`` ones
(CPU, latency, memory); null where it means nothing (FreeSWITCH's CPU rows).
``ours``/``genesis`` are medians over ``--repeat`` samples.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import platform
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = ROOT / "benchmarks" / "peer_genesis_real.py"
PASSWORD = "ClueCon"
DIAL = "loopback/9002/default"
MEDIA = "tone_stream://%(100,0,440)"
SWITCH_BENCHES = ("inbound-channel", "inbound-raw", "outbound", "outbound-floor")
#: Rows with no Genesis side: the floor under a library.
OURS_ONLY = ("outbound-floor",)
MEMORY_BENCHES = ("mem-inbound", "mem-outbound")


# ------------------------------------------------------------------ measuring


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    with open(f"/proc/{pid or os.getpid()}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


#: ``ours ... --profile FILE``: cProfile of the measured window only, written to FILE.
PROFILE_TO: str | None = None


class Window:
    """Wall clock, this process's CPU and FreeSWITCH's CPU between start() and stop()."""

    def __init__(self, fs_pid: int | None) -> None:
        self.fs_pid = fs_pid
        self.t0 = self.cpu0 = 0.0
        self.fs0: float | None = None
        self.profiler: cProfile.Profile | None = None

    def start(self) -> None:
        self.t0, self.cpu0 = time.perf_counter(), cpu_seconds()
        self.fs0 = cpu_seconds(self.fs_pid) if self.fs_pid else None
        if PROFILE_TO:
            self.profiler = cProfile.Profile(time.process_time)
            self.profiler.enable()

    def stop(self, count: int) -> dict[str, Any]:
        if self.profiler is not None:
            self.profiler.disable()
            self.profiler.dump_stats(str(PROFILE_TO))
        seconds = time.perf_counter() - self.t0
        cpu = cpu_seconds() - self.cpu0
        result: dict[str, Any] = {
            "count": count,
            "seconds": seconds,
            "rate": count / seconds,
            "cpu_ms": 1000 * cpu / count,
            "cpu_share": cpu / seconds,
        }
        if self.fs_pid and self.fs0 is not None:
            fs = cpu_seconds(self.fs_pid) - self.fs0
            result["fs_cpu_ms"] = 1000 * fs / count
            result["fs_cpu_share"] = fs / seconds
        return result


def latency_summary(latencies: list[float], setups: list[float]) -> dict[str, Any]:
    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "handler_p50_ms": pct(latencies, 0.5),
        "handler_p95_ms": pct(latencies, 0.95),
        "setup_p50_ms": pct(setups, 0.5),
        "setup_p95_ms": pct(setups, 0.95),
        "handler_mean_ms": 1000 * statistics.fmean(latencies) if latencies else None,
    }


# ------------------------------------------------------------ our side (trio)


async def _in_parallel(calls: int, concurrency: int, one: Any) -> None:
    import trio

    counter = iter(range(calls))

    async def worker() -> None:
        for _ in counter:
            await one()

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)


async def ours_channel(args: argparse.Namespace) -> dict[str, Any]:
    from genesis_trio import Channel, Inbound

    async with Inbound(args.host, args.port, PASSWORD, timeout=30) as client:

        async def one() -> None:
            channel = await Channel.create(client, args.dial, timeout=30)
            await channel.hangup(timeout=30)

        await one()  # warm-up, outside the window
        window = Window(args.fs_pid)
        window.start()
        await _in_parallel(args.calls, args.concurrency, one)
        return window.stop(args.calls)


async def ours_raw(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    from genesis_trio import Inbound

    hangups: dict[str, trio.Event] = {}
    client = Inbound(args.host, args.port, PASSWORD, timeout=30)
    async with client, client.subscribe("CHANNEL_HANGUP_COMPLETE") as events:

        async def route() -> None:
            async for event in events:
                done = hangups.pop(event.unique_id or "", None)
                if done is not None:
                    done.set()

        async def one() -> None:
            leg = str(uuid.uuid4())
            hung_up = hangups[leg] = trio.Event()
            body = await client.bgapi(
                f"originate {{origination_uuid={leg}}}{args.dial} &park()", timeout=30
            )
            if not body.startswith("+OK"):
                raise RuntimeError(f"originate failed: {body!r}")
            await client.api(f"uuid_kill {leg} NORMAL_CLEARING", timeout=30)
            with trio.fail_after(30):
                await hung_up.wait()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(route)
            await one()
            window = Window(args.fs_pid)
            window.start()
            await _in_parallel(args.calls, args.concurrency, one)
            result = window.stop(args.calls)
            nursery.cancel_scope.cancel()
    return result


class OutboundTally:
    """The outbound window: it starts when the ``--warmup``-th session ended and ends
    after ``--calls`` more; every measured session's handler and setup latency."""

    def __init__(self, args: argparse.Namespace, done: Any) -> None:
        self.args = args
        self.window = Window(args.fs_pid)
        self.done = done  # an Event of the server's framework, set after the last session
        self.finished = 0
        self.latencies: list[float] = []
        self.setups: list[float] = []

    def ended(self, began: float, began_wall: float, created: str | bytes | None) -> None:
        """A handler that began at ``began`` (perf_counter) returned; ``created``: the leg's
        ``Caller-Channel-Created-Time`` (microseconds since the epoch), if known."""
        ended = time.perf_counter()
        self.finished += 1
        warmup, total = self.args.warmup, self.args.warmup + self.args.calls
        if self.finished == warmup:
            self.window.start()
        elif self.finished > warmup:
            self.latencies.append(ended - began)
            if created:
                self.setups.append(began_wall - int(created) / 1e6)
            if self.finished == total:
                self.done.set()

    async def measure(self, port: int) -> dict[str, Any]:
        """Announce the server's port, wait for the last session, return the window's figures."""
        import trio

        print(json.dumps({"port": port}), flush=True)
        with trio.fail_after(self.args.timeout):
            await self.done.wait()
        result = self.window.stop(self.args.calls)
        result.update(latency_summary(self.latencies, self.setups))
        return result


async def ours_outbound(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    from genesis_trio import Outbound, Session

    tally = OutboundTally(args, trio.Event())

    async def handler(session: Session) -> None:
        began, began_wall = time.perf_counter(), time.time()
        created = session.context.get("Caller-Channel-Created-Time")
        channel = session.channel
        await channel.answer(timeout=30)
        await channel.playback(args.media, timeout=30)
        await channel.hangup(timeout=30)
        tally.ended(began, began_wall, created)

    app = Outbound(handler, "127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(app.serve)
        result = await tally.measure(port)
        nursery.cancel_scope.cancel()
    return result


class _Frames:
    """ESL frames off a raw socket: the header block, then Content-Length bytes of body."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.buffer = b""

    async def next(self) -> tuple[bytes, bytes]:
        while True:
            buffer = self.buffer
            end = buffer.find(b"\n\n")
            if end >= 0:
                at = buffer.find(b"Content-Length: ", 0, end)
                length = 0
                if at >= 0:
                    line_end = buffer.find(b"\n", at, end)
                    length = int(buffer[at + 16 : end if line_end < 0 else line_end])
                if len(buffer) >= end + 2 + length:
                    self.buffer = buffer[end + 2 + length :]
                    return buffer[:end], buffer[end + 2 : end + 2 + length]
            data = await self.sock.recv(65536)
            if not data:
                raise EOFError("the switch closed the socket")
            self.buffer += data

    async def event(self, name: bytes, application_uuid: bytes = b"") -> None:
        """Read frames until the event ``name`` (of that application, if given)."""
        starts, carries = b"Event-Name: " + name + b"\n", b"\nApplication-UUID: "
        while True:
            _, body = await self.next()
            if body.startswith(starts) and (
                not application_uuid or carries + application_uuid + b"\n" in body
            ):
                return


async def floor_outbound(args: argparse.Namespace) -> dict[str, Any]:
    """The ``outbound`` exchange on bare trio sockets: no library, the floor under it.

    The bytes ``ours outbound`` writes (``strace``), in the same order: ``connect``,
    ``myevents`` and ``linger`` in one write and their replies; per application a
    ``sendmsg`` execute with an Event-UUID, then frames until its
    ``CHANNEL_EXECUTE_COMPLETE``; the ``sendmsg`` hangup, then frames until
    ``CHANNEL_HANGUP``; ``exit``, then until the switch closes the socket. Replies are
    framed and skipped, events matched with ``bytes`` searches; nothing is decoded.
    """
    import trio

    tally = OutboundTally(args, trio.Event())
    media = args.media.encode()

    async def send_all(sock: Any, data: bytes) -> None:
        while data:
            data = data[await sock.send(data) :]

    async def session(sock: Any) -> None:
        with sock:
            frames = _Frames(sock)
            await send_all(sock, b"connect\n\nmyevents\n\nlinger\n\n")
            connected, _ = await frames.next()
            await frames.next()
            await frames.next()
            began, began_wall = time.perf_counter(), time.time()
            at = connected.find(b"\nCaller-Channel-Created-Time: ")
            created = connected[at + 30 : connected.find(b"\n", at + 1)] if at >= 0 else None
            for application, arg in ((b"answer", b""), (b"playback", media)):
                event_uuid = str(uuid.uuid4()).encode()
                arg_line = b"execute-app-arg: " + arg + b"\n" if arg else b""
                await send_all(
                    sock,
                    b"sendmsg\ncall-command: execute\nexecute-app-name: " + application
                    + b"\n" + arg_line + b"Event-UUID: " + event_uuid + b"\n\n",
                )  # fmt: skip
                await frames.event(b"CHANNEL_EXECUTE_COMPLETE", event_uuid)
            await send_all(
                sock, b"sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n"
            )
            await frames.event(b"CHANNEL_HANGUP")
            tally.ended(began, began_wall, created)
            await send_all(sock, b"exit\n\n")
            while await sock.recv(65536):
                pass

    listener = trio.socket.socket()
    with listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        async with trio.open_nursery() as nursery:

            async def accept() -> None:
                while True:
                    sock, _ = await listener.accept()
                    nursery.start_soon(session, sock)

            nursery.start_soon(accept)
            result = await tally.measure(listener.getsockname()[1])
            nursery.cancel_scope.cancel()
    return result


async def ours_mem_inbound(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    from genesis_trio import Inbound

    raise_fd_limit(args.count + 256)
    release = trio.Event()

    # A task per connection, as an application holding many would have (1,000
    # contexts nested in one task would nest 1,000 cancel scopes).
    async def hold(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with Inbound(args.host, args.port, PASSWORD, timeout=30):
            task_status.started()
            await release.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(hold)
        gc.collect()
        first = rss_kib()
        for _ in range(args.count - 1):
            await nursery.start(hold)
        gc.collect()
        last = rss_kib()
        release.set()
    return {
        "count": args.count,
        "rss_first_kib": first,
        "rss_last_kib": last,
        "kib_each": (last - first) / (args.count - 1),
    }


async def ours_mem_outbound(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    from genesis_trio import Outbound, Session

    raise_fd_limit(args.count + 256)
    live = first = 0
    release = trio.Event()
    all_in = trio.Event()

    async def handler(session: Session) -> None:
        nonlocal live, first
        live += 1
        if live == 1:
            # The peer's warm-up call, alone: the baseline with one live session.
            gc.collect()
            first = rss_kib()
            return
        if live == args.count + 1:
            all_in.set()
        await release.wait()

    app = Outbound(handler, "127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(app.serve)
        print(json.dumps({"port": port}), flush=True)
        with trio.fail_after(args.timeout):
            await all_in.wait()
            gc.collect()
            last = rss_kib()
        release.set()
        with trio.move_on_after(30):
            while app.sessions:  # noqa: ASYNC110 (a benchmark: let the goodbyes finish)
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    return {
        "count": args.count,
        "rss_first_kib": first,
        "rss_last_kib": last,
        "kib_each": (last - first) / (args.count - 1),
    }


OURS = {
    "inbound-channel": ours_channel,
    "inbound-raw": ours_raw,
    "outbound": ours_outbound,
    "outbound-floor": floor_outbound,
    "mem-inbound": ours_mem_inbound,
    "mem-outbound": ours_mem_outbound,
}


# --------------------------------------------- the dialer and the fake outbound peer


async def dialer(args: argparse.Namespace) -> dict[str, Any]:
    """Keep ``concurrency`` calls to the outbound server in flight until ``calls`` ended."""
    import trio

    from genesis_trio import GenesisError, Inbound

    hangups: dict[str, trio.Event] = {}
    failures: list[str] = []
    cpu0 = cpu_seconds()
    client = Inbound(args.host, args.port, PASSWORD, timeout=30)
    async with client, client.subscribe("CHANNEL_HANGUP_COMPLETE") as events:

        async def route() -> None:
            async for event in events:
                done = hangups.pop(event.unique_id or "", None)
                if done is not None:
                    done.set()

        async def one() -> None:
            leg = str(uuid.uuid4())
            hung_up = hangups[leg] = trio.Event()
            variables = f"origination_uuid={leg},outbound_port={args.outbound_port}"
            try:
                with trio.fail_after(60):
                    await client.bgapi(
                        f"originate {{{variables}}}loopback/9000/default &park()", timeout=60
                    )
                    await hung_up.wait()
            except (GenesisError, TimeoutError) as exc:
                hangups.pop(leg, None)
                failures.append(f"{type(exc).__name__}: {exc}")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(route)
            # The warm-up calls one at a time, then the measured ones.
            for _ in range(args.warmup):
                await one()
            await _in_parallel(args.calls, args.concurrency, one)
            nursery.cancel_scope.cancel()
    return {"failures": len(failures), "first_failures": failures[:3], "cpu": cpu_seconds() - cpu0}


def connect_reply(template: bytes, leg: str) -> bytes:
    return template.replace(_RECORDED_UUID, leg.encode())


_RECORDED_UUID = b"737e7aab-770e-4948-bd73-a8a2c25a23c7"
_GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


def recorded_connect_reply() -> bytes:
    from benchmarks.source import capture_bytes

    data = capture_bytes("outbound_session_plain")
    end = data.find(b"\n\n") + 2
    frame = data[:end]
    if _RECORDED_UUID not in frame or b"command/reply" not in frame:
        raise RuntimeError("the outbound capture does not start with the connect reply")
    return frame


async def fake_peer(args: argparse.Namespace) -> dict[str, Any]:
    """Open ``count`` outbound sockets to a server and play FreeSWITCH's part, minimally."""
    import trio

    raise_fd_limit(args.count + 256)
    template = recorded_connect_reply()
    ok = b"Content-Type: command/reply\nReply-Text: +OK\n\n"
    bye = (
        b"Content-Type: command/reply\nReply-Text: +OK bye\n\n"
        b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n%s"
        % (len(_GOODBYE), _GOODBYE)
    )
    opening = trio.CapacityLimiter(20)
    closed = 0

    async def call() -> None:
        nonlocal closed
        async with opening:
            stream = await trio.open_tcp_stream("127.0.0.1", args.outbound_port)
        async with stream:
            pending = b""
            leg = str(uuid.uuid4())
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    break
                pending += data
                out: list[bytes] = []
                leaving = False
                while (end := pending.find(b"\n\n")) >= 0:
                    verb = pending[:end].split(None, 1)[0] if pending[:end].strip() else b""
                    pending = pending[end + 2 :]
                    if verb == b"connect":
                        out.append(connect_reply(template, leg))
                    elif verb == b"exit":
                        out.append(bye)
                        leaving = True
                    else:
                        out.append(ok)
                if out:
                    await stream.send_all(b"".join(out))
                if leaving:
                    break
        closed += 1

    with trio.fail_after(args.timeout):
        await call()  # the warm-up call: the server takes its baseline during it
        async with trio.open_nursery() as nursery:
            for _ in range(args.count):
                nursery.start_soon(call)
    return {"closed": closed}


# ------------------------------------------------------------------ orchestration


def bundle_home() -> Path:
    configured = os.environ.get("GENESIS_TRIO_FREESWITCH_BUNDLE")
    return (
        Path(configured) if configured else Path.home() / ".cache" / "genesis-trio" / "freeswitch"
    )


def random_free_port() -> int:
    """A port in 20000-60000 that is free on 127.0.0.1 for TCP and UDP right now."""
    for _ in range(200):
        port = random.randint(20000, 60000)
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found in 20000-60000")


@dataclass(frozen=True)
class Switch:
    host: str
    port: int
    pid: int
    instance: Path
    version: str


@contextlib.contextmanager
def freeswitch() -> Iterator[Switch]:
    home = bundle_home()
    run, stop = home / "bin" / "run-freeswitch", home / "bin" / "stop-freeswitch"
    if not run.exists():
        raise SystemExit(f"no FreeSWITCH bundle at {home} (see ../shared/freeswitch/README.md)")
    instance = Path(tempfile.mkdtemp(prefix="genesis-trio-bench-fs-"))
    try:
        failure = ""
        for _ in range(3):
            esl_port, sip_port = random_free_port(), random_free_port()
            command = [
                str(run), str(instance),
                "--esl-port", str(esl_port), "--sip-port", str(sip_port),
                "--loglevel", "warning", "--timeout", "60",
            ]  # fmt: skip
            started = subprocess.run(command, capture_output=True, text=True, check=False)
            if started.returncode == 0:
                break
            failure = (started.stderr or started.stdout)[-2000:]
        else:
            raise SystemExit(f"FreeSWITCH did not start:\n{failure}")
        pid = int(started.stdout.strip().splitlines()[-1])
        try:
            version = api_once("127.0.0.1", esl_port, "version").strip()
            yield Switch("127.0.0.1", esl_port, pid, instance, version)
        finally:
            subprocess.run([str(stop), str(instance)], check=False, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(instance, ignore_errors=True)


def api_once(host: str, port: int, command: str) -> str:
    """One ``api`` command over a throwaway blocking socket (orchestration only)."""
    with socket.create_connection((host, port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def frame() -> tuple[dict[str, str], bytes]:
            headers: dict[str, str] = {}
            while (line := reader.readline().rstrip(b"\n")) != b"":
                name, _, value = line.decode().partition(": ")
                headers[name] = value
            length = int(headers.get("Content-Length", 0))
            return headers, reader.read(length) if length else b""

        frame()  # auth/request
        sock.sendall(f"auth {PASSWORD}\n\n".encode())
        frame()
        sock.sendall(f"api {command}\n\n".encode())
        _, body = frame()
        return body.decode()


def wait_idle(switch: Switch, timeout: float = 60.0) -> int:
    """Wait (bounded) until the switch has no channels left; return how many remain."""
    deadline = time.monotonic() + timeout
    while True:
        count = int(api_once(switch.host, switch.port, "show channels count").split()[0] or 0)
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.2)  # orchestration, not a test: the previous run's legs are going


@contextlib.contextmanager
def started(command: Sequence[str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def last_json(output: str) -> dict[str, Any]:
    lines = [line for line in output.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError("no result")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def side_command(side: str, bench: str, args: argparse.Namespace) -> list[str]:
    if side == "ours":
        head = [sys.executable, "-m", "benchmarks.real_switch", "ours", bench]
    else:
        from benchmarks.run import peer_python

        head = [str(peer_python()), str(PEER_SCRIPT), bench]
    return [
        *head,
        "--calls", str(args.calls), "--concurrency", str(args.concurrency),
        "--warmup", str(args.warmup), "--count", str(args.count),
        "--timeout", str(args.timeout),
    ]  # fmt: skip


def run_inbound(side: str, bench: str, switch: Switch, args: argparse.Namespace) -> dict[str, Any]:
    command = side_command(side, bench, args)
    command += ["--host", switch.host, "--port", str(switch.port), "--fs-pid", str(switch.pid)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout + 60, check=False
    )
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-400:]}"}
    return last_json(done.stdout)


def run_outbound(side: str, bench: str, switch: Switch, args: argparse.Namespace) -> dict[str, Any]:
    command = [*side_command(side, bench, args), "--fs-pid", str(switch.pid)]
    with started(command) as server:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        dial = [
            sys.executable, "-m", "benchmarks.real_switch", "dial",
            "--host", switch.host, "--port", str(switch.port), "--outbound-port", str(port),
            "--calls", str(args.calls), "--concurrency", str(args.concurrency),
            "--warmup", str(args.warmup), "--timeout", str(args.timeout),
        ]  # fmt: skip
        dialed = subprocess.run(
            dial, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout + 60, check=False
        )
        try:
            output, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            return {"error": "the outbound server did not finish"}
    if server.returncode != 0:
        return {"error": f"server exit {server.returncode}"}
    result = last_json(output)
    if dialed.returncode == 0:
        dialer_result = last_json(dialed.stdout)
        result["dial_failures"] = dialer_result["failures"]
    return result


def run_mem_inbound(side: str, source_port: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [*side_command(side, "mem-inbound", args), "--port", str(source_port)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout + 60, check=False
    )
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-400:]}"}
    return last_json(done.stdout)


def run_mem_outbound(side: str, args: argparse.Namespace) -> dict[str, Any]:
    with started(side_command(side, "mem-outbound", args)) as server:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        peer = [
            sys.executable, "-m", "benchmarks.real_switch", "fake-peer",
            "--outbound-port", str(port), "--count", str(args.count),
            "--timeout", str(args.timeout),
        ]  # fmt: skip
        with started(peer) as fake:
            try:
                output, _ = server.communicate(timeout=args.timeout + 60)
            except subprocess.TimeoutExpired:
                return {"error": "the outbound server did not finish"}
            with contextlib.suppress(subprocess.TimeoutExpired):
                fake.wait(30)
    if server.returncode != 0:
        return {"error": f"server exit {server.returncode}"}
    return last_json(output)


@contextlib.contextmanager
def event_source() -> Iterator[int]:
    command = [sys.executable, "-m", "benchmarks.source", "--port", "0", "--events", "1"]
    with started(command) as source:
        assert source.stdout is not None
        yield int(json.loads(source.stdout.readline())["port"])


# ------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Metric:
    key: str  # bench.field
    label: str
    unit: str
    better: str | None  # "higher", "lower", None (context only)
    digits: int = 1


METRICS: tuple[Metric, ...] = (
    Metric("inbound-channel.rate", "Channel.create -> hangup, calls/s", "calls/s", "higher", 0),
    Metric("inbound-channel.cpu_ms", "  client CPU per call", "ms CPU/call", "lower", 2),
    Metric("inbound-channel.fs_cpu_share", "  FreeSWITCH CPU (share of a core)", "%", None, 0),
    Metric("inbound-raw.rate", "raw bgapi + subscription, calls/s", "calls/s", "higher", 0),
    Metric("inbound-raw.cpu_ms", "  client CPU per call", "ms CPU/call", "lower", 2),
    Metric("inbound-raw.fs_cpu_share", "  FreeSWITCH CPU (share of a core)", "%", None, 0),
    Metric("outbound.rate", "Outbound: answer, 100 ms tone, hangup", "sessions/s", "higher", 0),
    Metric("outbound.cpu_ms", "  server CPU per session", "ms CPU/session", "lower", 2),
    Metric("outbound-floor.cpu_ms", "  floor: bare trio sockets, no library [4]", "ms CPU/session",
           None, 2),
    Metric("outbound.handler_p50_ms", "  handler latency p50", "ms", "lower", 0),
    Metric("outbound.handler_p95_ms", "  handler latency p95", "ms", "lower", 0),
    Metric("outbound.setup_p50_ms", "  setup latency p50 (leg created->handler)", "ms", "lower", 1),
    Metric("outbound.fs_cpu_share", "  FreeSWITCH CPU (share of a core)", "%", None, 0),
    Metric("mem-inbound.kib_each", "RSS per idle Inbound connection", "KiB", "lower", 1),
    Metric("mem-outbound.kib_each", "RSS per live outbound session", "KiB", "lower", 1),
)  # fmt: skip


GROUPS = {
    "inbound-channel": "Channel.create -> hangup",
    "inbound-raw": "raw bgapi + subscription",
    "outbound": "Outbound session",
    "outbound-floor": "Outbound session",
}


def median_of(samples: list[dict[str, Any]], field: str) -> float | None:
    values = [s[field] for s in samples if s.get(field) is not None]
    return statistics.median(values) if values else None


def build_rows(samples: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    rows = []
    for metric in METRICS:
        bench, field = metric.key.split(".", 1)
        if bench not in samples:
            continue
        ours = median_of(samples[bench]["ours"], field)
        theirs = median_of(samples[bench]["genesis"], field)
        if metric.unit == "%":
            ours = None if ours is None else 100 * ours
            theirs = None if theirs is None else 100 * theirs
        ratio = None
        if metric.better and ours and theirs:
            ratio = ours / theirs if metric.better == "higher" else theirs / ours
        label = metric.label
        if label.startswith(" "):  # a detail of the row above: name it in full for the chart
            label = f"{GROUPS[bench]}: {label.strip()}"
        rows.append(
            {
                "key": metric.key,
                "label": label,
                "ours": ours,
                "genesis": theirs,
                "ratio": ratio,
                "unit": metric.unit,
                "better": metric.better,
            }
        )
    return rows


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    header = f"{'benchmark':<52} {'genesis_trio':>12} {'Genesis':>10} {'ratio':>7}  unit"
    lines = [header, "-" * (len(header) + 10)]
    labels = {m.key: m for m in METRICS}
    for row in rows:
        metric = labels[row["key"]]

        def fmt(value: float | None, digits: int = metric.digits) -> str:
            return "-" if value is None else f"{value:,.{digits}f}"

        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(
            f"{metric.label:<52} {fmt(row['ours']):>12} {fmt(row['genesis']):>10} "
            f"{ratio:>7}  {row['unit']}"
        )
    lines += [
        "",
        f"[1] Median of {meta['repeat']} samples; {meta['calls']} calls, {meta['concurrency']} at "
        f"a time, after warm-up; memory: {meta['count']:,} connections/sessions.",
        f"[2] genesis_trio {meta['ours_version']} on trio; Genesis {meta['peer_version']} on "
        f"asyncio; Python {meta['python']}; {meta['freeswitch']}; no OpenTelemetry SDK.",
        "[3] ratio: how many times better genesis_trio is (rate: ours/Genesis; CPU, latency, "
        "memory: Genesis/ours). FreeSWITCH CPU is its whole process over the same window: near "
        "100% means the switch, not the client, set the pace.",
    ]
    if any(row["key"].startswith("outbound-floor.") for row in rows):
        lines.append(
            "[4] The same exchange with the same switch and dialer, served by a bare trio "
            "socket server (no library: raw sockets, bytes.find for the frames and the few "
            "headers it needs): the CPU the syscalls, the scheduler and the framing cost."
        )
    errors = meta.get("errors") or []
    lines += [f"FAILED {e}" for e in errors]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main


def add_worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fs-pid", type=int)
    parser.add_argument("--outbound-port", type=int)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--dial", default=DIAL)
    parser.add_argument("--media", default=MEDIA)
    parser.add_argument("--timeout", type=float, default=300.0)


def worker_main(role: str, argv: Sequence[str]) -> None:
    import trio

    import genesis_trio

    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.real_switch {role}")
    if role == "ours":
        parser.add_argument("bench", choices=sorted(OURS))
    add_worker_options(parser)
    parser.add_argument("--profile", help="cProfile the measured window into this file")
    args = parser.parse_args(argv)
    global PROFILE_TO
    PROFILE_TO = args.profile
    job = {"dial": dialer, "fake-peer": fake_peer}.get(role) or OURS[args.bench]
    result = trio.run(job, args)
    result["library"] = f"genesis_trio {genesis_trio.__version__}"
    print(json.dumps(result), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("ours", "dial", "fake-peer"):
        worker_main(argv[0], argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.real_switch", description=__doc__.split("\n\n")[0]
    )
    every = (*SWITCH_BENCHES, *MEMORY_BENCHES)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(every)}")
    parser.add_argument("--calls", type=int, default=300, help="calls per sample")
    parser.add_argument("--concurrency", type=int, default=20, help="calls in flight")
    parser.add_argument("--warmup", type=int, default=5, help="outbound calls before the window")
    parser.add_argument("--count", type=int, default=1000, help="connections/sessions (memory)")
    parser.add_argument("--repeat", type=int, default=3, help="samples per cell (median)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per sample")
    parser.add_argument("--no-peer", action="store_true", help="genesis_trio only")
    parser.add_argument("--peer-spec", default="genesis")
    parser.add_argument("--json", type=Path, help="write rows, meta and every sample here")
    args = parser.parse_args(argv)
    wanted = args.only.split(",") if args.only else list(every)
    unknown = set(wanted) - set(every)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if args.calls < 1 or args.concurrency < 1 or args.count < 2:
        parser.error("--calls and --concurrency must be >= 1, --count >= 2")

    from benchmarks.run import ensure_peer
    from genesis_trio import __version__

    sides = ["ours"] if args.no_peer else ["ours", "genesis"]
    meta: dict[str, Any] = {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "count": args.count,
        "repeat": args.repeat,
        "ours_version": __version__,
        "peer_version": "-" if args.no_peer else ensure_peer(args.peer_spec, False),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_before": os.getloadavg(),
        "freeswitch": "-",
        "errors": [],
    }
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        bench: {"ours": [], "genesis": []} for bench in wanted
    }
    began = time.perf_counter()

    def record(bench: str, side: str, sample: dict[str, Any], repeat: int) -> None:
        samples[bench][side].append(sample)
        if "error" in sample:
            meta["errors"].append(f"{bench} ({side}): {sample['error']}")
        shown = sample.get("error") or ", ".join(
            f"{k}={v:.3g}" for k, v in sample.items() if isinstance(v, float)
        )
        print(f"  [{repeat + 1}/{args.repeat}] {bench:<16} {side:<8} {shown}", file=sys.stderr)

    switch_benches = [b for b in wanted if b in SWITCH_BENCHES]
    if switch_benches:
        with freeswitch() as switch:
            meta["freeswitch"] = switch.version
            for repeat in range(args.repeat):
                for bench in switch_benches:
                    order = sides if repeat % 2 == 0 else sides[::-1]
                    for side in ["ours"] if bench in OURS_ONLY else order:
                        wait_idle(switch)
                        if bench.startswith("outbound"):
                            sample = run_outbound(side, bench, switch, args)
                        else:
                            sample = run_inbound(side, bench, switch, args)
                        record(bench, side, sample, repeat)
    for bench in (b for b in wanted if b in MEMORY_BENCHES):
        for repeat in range(args.repeat):
            for side in sides if repeat % 2 == 0 else sides[::-1]:
                if bench == "mem-inbound":
                    with event_source() as source_port:
                        sample = run_mem_inbound(side, source_port, args)
                else:
                    sample = run_mem_outbound(side, args)
                record(bench, side, sample, repeat)
    meta["seconds"] = round(time.perf_counter() - began, 1)
    meta["load_after"] = os.getloadavg()
    rows = build_rows(samples)
    print()
    print(render(rows, meta))
    print(f"\n(total {meta['seconds']} s on {meta['machine']}; load {meta['load_before']})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"rows": rows, "meta": meta, "samples": samples}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
