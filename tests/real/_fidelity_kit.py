"""Differential testing of the fake switch against a real FreeSWITCH.

A scenario drives a switch through the public API (``Inbound``, ``Channel``, ``Outbound``)
while a recording proxy sits on every socket between us and the switch. The same scenario
runs once on :class:`~genesis_trio.testing.FakeFreeSWITCH` and once on a real switch; the
two transcripts are normalised (uuids, dates, durations, hostnames, ports) and compared in
five categories:

``commands``
    the bytes we wrote, one comparison point per command;
``replies``
    every frame that is not an event (auth request, command replies, api bodies, disconnect
    notices), one point per frame;
``events``
    per channel (and for the switch-wide ``API``/``BACKGROUND_JOB`` events), the sequence of
    event names (``CHANNEL_STATE``/``CHANNEL_CALLSTATE`` with their state,
    ``CHANNEL_EXECUTE*`` with their application); one point per event of the longer
    sequence, matched points are the longest common subsequence;
``header-names``
    for each pair of events matched above, one point per header name of either side;
``header-values``
    for each header both carry and whose value is not per-call, one point.

A real switch is not deterministic (threads race: a loopback a-leg may be answered before
or after its CS_ROUTING state), so a real scenario may run several times; each channel of
the fake is compared with the closest of the real runs.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import trio

from genesis_trio import Inbound
from genesis_trio.protocol import (
    CONNECTION_CLOSED,
    NEED_DATA,
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    ESLParser,
    Event,
    LogData,
    Message,
)

__all__ = [
    "CATEGORIES",
    "Comparison",
    "Recorder",
    "Score",
    "Target",
    "Transcript",
    "compare",
]

CATEGORIES = ("commands", "replies", "events", "header-names", "header-values")

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Events the switch fires on its own clock, not because of the scenario.
_TIMER_EVENTS = {"HEARTBEAT", "RE_SCHEDULE", "SESSION_HEARTBEAT", "DEL_SCHEDULE", "ADD_SCHEDULE"}

# Header values that differ from call to call (times, durations, counters, ports): only the
# presence of these headers is compared, never their values.
_VOLATILE = re.compile(
    r"""^(
        Event-Date-.* | Event-Sequence | Core-UUID | Event-Calling-Line-Number
      | FreeSWITCH-(Hostname|Switchname|IPv4|IPv6)
      | .*-Time | Caller-Channel-Last-Hold | Caller-Channel-Hold-Accum
      | Other-Leg-Channel-.* | Job-UUID | Event-UUID | Application-UUID | DTMF-Duration
      | variable_.*_(epoch|uepoch|stamp|sec|msec|usec|ms|seconds|samples|pos)
      | variable_(billsec|billmsec|billusec|duration|mduration|uduration|flow_billsec
          |flow_billmsec|flow_billusec|progresssec|progressmsec|progressusec|answersec
          |answermsec|answerusec|waitsec|waitmsec|waitusec|progress_mediasec
          |progress_mediamsec|progress_mediausec|session_id|outbound_port|socket_host
          |rtp_.*|sip_.*|hold_accum_.*|playback_.*|record_.*|current_application_response
          |origination_caller_id_.*|DP_MATCH)
      | Channel-(Read|Write)-Codec-Bit-Rate | Session-Count | Max-Sessions | Up-Time
      | Caller-Transfer-Source | variable_transfer_(source|history)
      | Session-Per-Sec.* | Idle-CPU | Heartbeat-Interval | Session-Since-Startup
      | Session-Peak-.* | FreeSWITCH-Version | Uptime-msec | Event-Info
    )$""",
    re.VERBOSE,
)


# ------------------------------------------------------------------------- recording


@dataclass
class Wire:
    """One recorded socket: what we sent, what the switch sent back (parsed)."""

    label: str
    switch_connects: bool = False
    sent: bytearray = field(default_factory=bytearray)
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A switch to run scenarios on."""

    kind: str  # "fake" or "real"
    host: str
    port: int
    password: str
    # Where the switch can reach an outbound server of ours (the fake and the real switch
    # both dial 127.0.0.1:${outbound_port}).
    replacements: tuple[tuple[str, str], ...] = ()


class Recorder:
    """Connections to one switch through recording proxies, and waits on what they saw."""

    def __init__(self, target: Target, nursery: trio.Nursery) -> None:
        self.target = target
        self.wires: list[Wire] = []
        self._nursery = nursery
        self._changed = trio.Event()
        self._open = 0
        self.replacements: list[tuple[str, str]] = list(target.replacements)

    # ------------------------------------------------------------------ proxying

    async def _proxy(
        self,
        label: str,
        upstream: tuple[str, int],
        switch_connects: bool,
        *,
        task_status: trio.TaskStatus[int],
    ) -> None:
        """Accept one connection on a fresh port, relay it to ``upstream``, record both ways."""
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        task_status.started(port)
        with listeners[0].socket:
            client = await listeners[0].accept()
        for listener in listeners:
            await listener.aclose()
        wire = Wire(label, switch_connects)
        self.wires.append(wire)
        self._open += 1
        try:
            await self._relay(wire, client, upstream, switch_connects)
        finally:
            self._open -= 1
            self._notify()

    async def _relay(
        self,
        wire: Wire,
        accepted: trio.SocketStream,
        upstream: tuple[str, int],
        switch_connects: bool,
    ) -> None:
        try:
            connected = await trio.open_tcp_stream(*upstream)
        except OSError:
            await accepted.aclose()
            return
        # Inbound: we connect to the switch. Outbound: the switch connects to us.
        ours, switch = (connected, accepted) if switch_connects else (accepted, connected)
        parser = ESLParser()

        async def commands() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while data := await ours.receive_some(65536):
                    wire.sent += data
                    await switch.send_all(data)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await switch.send_eof()

        async def replies() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while True:
                    data = await switch.receive_some(65536)
                    parser.receive_data(data)
                    while (message := parser.next_event()) not in (NEED_DATA, CONNECTION_CLOSED):
                        wire.messages.append(message)  # type: ignore[arg-type]
                    self._notify()
                    if not data:
                        break
                    await ours.send_all(data)
            await ours.aclose()

        async with ours, switch, trio.open_nursery() as relay:
            relay.start_soon(commands)
            relay.start_soon(replies)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def proxy_to(
        self, label: str, upstream: tuple[str, int], *, switch_connects: bool = False
    ) -> int:
        """A recording proxy for one connection to ``upstream``; returns its port.

        ``switch_connects``: the switch connects to the proxy (an outbound socket) and
        ``upstream`` is our server."""
        port: int = await self._nursery.start(self._proxy, label, upstream, switch_connects)
        return port

    @contextlib.asynccontextmanager
    async def inbound(
        self, label: str = "inbound", password: str | None = None, **options: object
    ) -> AsyncIterator[Inbound]:
        target = self.target
        port = await self.proxy_to(label, (target.host, target.port))
        client = Inbound("127.0.0.1", port, password or target.password, **options)  # type: ignore[arg-type]
        async with client:
            yield client

    # ------------------------------------------------------------------- waiting

    def events(self) -> list[Event]:
        return [m for wire in self.wires for m in wire.messages if isinstance(m, Event)]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 20.0) -> None:
        with trio.fail_after(within):
            while not predicate():
                await self._changed.wait()

    async def wait_count(self, name: str, count: int, within: float = 20.0) -> None:
        await self.wait_for(lambda: sum(e.name == name for e in self.events()) >= count, within)

    async def wait_event(self, name: str, uuid: str | None = None, within: float = 20.0) -> Event:
        """Until an event ``name`` (of channel ``uuid``) was received."""
        found: list[Event] = []

        def seen() -> bool:
            for event in self.events():
                if event.name == name and uuid in (None, event.get("Unique-ID")):
                    found.append(event)
                    return True
            return False

        await self.wait_for(seen, within)
        return found[0]

    async def settle(self, within: float = 20.0) -> None:
        """Until every channel seen on an inbound connection has ended.

        A channel ends with CHANNEL_STATE CS_DESTROY, or with CHANNEL_DESTROY on a
        connection that receives no CHANNEL_STATE for it. Outbound sockets are not
        watched: they close before the channel is destroyed.
        """

        def ended() -> bool:
            for wire in self.wires:
                if wire.switch_connects:
                    continue
                seen: set[str] = set()
                done: set[str] = set()
                with_states: set[str] = set()
                destroyed: set[str] = set()
                for event in wire.messages:
                    if not isinstance(event, Event) or event.name in ("CODEC", *_TIMER_EVENTS):
                        continue
                    uuid = event.get("Unique-ID")
                    if uuid is None:
                        continue
                    if event.name == "CHANNEL_UUID":
                        done.add(event.get("Old-Unique-ID") or "")
                    seen.add(uuid)
                    if event.name == "CHANNEL_STATE":
                        with_states.add(uuid)
                        if event.get("Channel-State") == "CS_DESTROY":
                            done.add(uuid)
                    if event.name == "CHANNEL_DESTROY":
                        destroyed.add(uuid)
                if seen - done - (destroyed - with_states):
                    return False
            return True

        await self.wait_for(ended, within)

    async def drain(self, within: float = 5.0) -> None:
        """Until every proxied connection closed (its last frames recorded)."""
        with trio.move_on_after(within):
            while self._open:
                await self._changed.wait()


Scenario = Callable[[Recorder], Awaitable[None]]


# ----------------------------------------------------------------------- transcripts


@dataclass
class Transcript:
    """A scenario's normalised record on one switch."""

    commands: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    # channel key -> events (name label, normalised headers)
    channels: dict[str, list[tuple[str, dict[str, str]]]] = field(default_factory=dict)


def _normaliser(replacements: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    pairs = sorted(((old, new) for old, new in replacements if old), key=lambda p: -len(p[0]))

    def normalise(text: str) -> str:
        text = UUID_RE.sub("<uuid>", text)
        for old, new in pairs:
            text = text.replace(old, new)
        return text

    return normalise


def _label(event: Event) -> str:
    name = event.name or "?"
    if name == "CHANNEL_STATE":
        return f"{name} {event.get('Channel-State')}"
    if name == "CHANNEL_CALLSTATE":
        return f"{name} {event.get('Channel-Call-State')}"
    if name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
        return f"{name} {event.get('Application')}"
    if name == "CUSTOM":
        return f"{name} {event.get('Event-Subclass')}"
    if name == "API":
        return f"{name} {event.get('API-Command')}"
    if name == "BACKGROUND_JOB":
        return f"{name} {event.get('Job-Command')}"
    return name


def _reply_text(message: Message, normalise: Callable[[str], str]) -> str | None:
    if isinstance(message, AuthRequest):
        return "auth/request"
    if isinstance(message, CommandReply):
        extra = sorted(
            name for name in message.headers if name not in ("Content-Type", "Reply-Text")
        )
        suffix = f" +headers {','.join(extra)}" if extra else ""
        return f"reply: {normalise(message.reply_text)}{suffix}"
    if isinstance(message, ApiResponse):
        return f"api: {normalise(message.body)}"
    if isinstance(message, DisconnectNotice):
        disposition = message.headers.get("Content-Disposition") or ""
        return f"disconnect {disposition}: {normalise(message.body or '')}"
    if isinstance(message, LogData):
        return None
    if isinstance(message, Event):
        return None
    return f"{type(message).__name__}"


def transcript(recorder: Recorder) -> Transcript:
    normalise = _normaliser(recorder.replacements)
    result = Transcript()
    # Renamed channels (origination_uuid): the old uuid's events belong to the new one.
    renamed: dict[str, str] = {}
    for event in recorder.events():
        old = event.get("Old-Unique-ID")
        if event.name == "CHANNEL_UUID" and old and event.get("Unique-ID"):
            renamed[old] = event.get("Unique-ID") or ""
    keys: dict[tuple[str, str], str] = {}
    ordinal: Counter[str] = Counter()
    # A channel is named after its first event that is not a CODEC (those may come
    # before an origination_uuid renames it).
    names: dict[tuple[str, str], str] = {}
    for wire in recorder.wires:
        for message in wire.messages:
            if isinstance(message, Event) and message.name != "CODEC":
                uuid = message.get("Unique-ID")
                if uuid:
                    names.setdefault(
                        (wire.label, renamed.get(uuid, uuid)), message.get("Channel-Name") or "?"
                    )
    for wire in recorder.wires:
        for command in bytes(wire.sent).decode("utf-8", "replace").split("\n\n"):
            if command.strip():
                text = command.strip()
                if text.startswith("auth "):
                    text = "auth <password>"
                result.commands.append(f"{wire.label}: {normalise(text)}")
        for message in wire.messages:
            reply = _reply_text(message, normalise)
            if reply is not None:
                result.replies.append(f"{wire.label}: {reply}")
                continue
            if not isinstance(message, Event) or message.name in _TIMER_EVENTS:
                continue
            uuid = message.get("Unique-ID")
            if uuid:
                uuid = renamed.get(uuid, uuid)
                key = keys.get((wire.label, uuid))
                if key is None:
                    channel_name = names.get((wire.label, uuid), message.get("Channel-Name") or "?")
                    name = f"{wire.label} {normalise(channel_name)}"
                    ordinal[name] += 1
                    key = keys[wire.label, uuid] = f"{name} #{ordinal[name]}"
            else:
                key = f"{wire.label} switch"
            headers = {
                name: ("<volatile>" if _VOLATILE.match(name) else normalise(value))
                for name, value in message.headers.items()
            }
            if message.body:
                headers["<body>"] = normalise(message.body)
            result.channels.setdefault(key, []).append((_label(message), headers))
    return result


# ------------------------------------------------------------------------ comparison


@dataclass
class Score:
    matched: int = 0
    total: int = 0

    def add(self, matched: int, total: int) -> None:
        self.matched += matched
        self.total += total

    @property
    def ratio(self) -> float:
        return self.matched / self.total if self.total else 1.0


@dataclass
class Comparison:
    scores: dict[str, Score] = field(default_factory=lambda: {c: Score() for c in CATEGORIES})
    differences: list[str] = field(default_factory=list)

    def merge(self, other: Comparison) -> None:
        for category, score in other.scores.items():
            self.scores[category].add(score.matched, score.total)
        self.differences += other.differences


def _compare_lists(
    category: str, real: list[str], fake: list[str], comparison: Comparison, where: str
) -> list[tuple[int, int]]:
    matcher = difflib.SequenceMatcher(a=real, b=fake, autojunk=False)
    pairs: list[tuple[int, int]] = []
    for block in matcher.get_matching_blocks():
        pairs += [(block.a + k, block.b + k) for k in range(block.size)]
    comparison.scores[category].add(len(pairs), max(len(real), len(fake)))
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            comparison.differences.append(
                f"[{category}] {where}: real {real[i1:i2]} / fake {fake[j1:j2]}"
            )
    return pairs


def _compare_channel(
    key: str,
    real: list[tuple[str, dict[str, str]]],
    fake: list[tuple[str, dict[str, str]]],
) -> Comparison:
    comparison = Comparison()
    pairs = _compare_lists(
        "events", [label for label, _ in real], [label for label, _ in fake], comparison, key
    )
    missing: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    values: dict[str, tuple[str, str]] = {}
    for i, j in pairs:
        label, real_headers = real[i]
        fake_headers = fake[j][1]
        names = set(real_headers) | set(fake_headers)
        common = set(real_headers) & set(fake_headers)
        comparison.scores["header-names"].add(len(common), len(names))
        for name in set(real_headers) - common:
            missing[f"{label}: {name}"] += 1
        for name in set(fake_headers) - common:
            extra[f"{label}: {name}"] += 1
        for name in common:
            if real_headers[name] == "<volatile>":
                continue
            same = real_headers[name] == fake_headers[name]
            comparison.scores["header-values"].add(int(same), 1)
            if not same:
                values.setdefault(f"{label}: {name}", (real_headers[name], fake_headers[name]))
    for text in missing:
        comparison.differences.append(f"[header-names] {key}: fake lacks {text}")
    for text in extra:
        comparison.differences.append(f"[header-names] {key}: fake adds {text}")
    for text, (real_value, fake_value) in values.items():
        comparison.differences.append(
            f"[header-values] {key}: {text}: real {real_value!r} / fake {fake_value!r}"
        )
    return comparison


def compare(reals: list[Transcript], fake: Transcript) -> Comparison:
    """Compare the fake's transcript with the real ones (each part with its closest run)."""
    comparison = Comparison()

    def best(build: Callable[[Transcript], Comparison]) -> Comparison:
        candidates = [build(real) for real in reals]
        return max(
            candidates,
            key=lambda c: (sum(s.matched for s in c.scores.values()), -len(c.differences)),
        )

    def lists(real: Transcript) -> Comparison:
        part = Comparison()
        _compare_lists("commands", real.commands, fake.commands, part, "commands")
        _compare_lists("replies", real.replies, fake.replies, part, "replies")
        return part

    comparison.merge(best(lists))
    keys = list(dict.fromkeys([k for real in reals for k in real.channels] + list(fake.channels)))
    for key in keys:
        comparison.merge(
            best(
                lambda real, key=key: _compare_channel(  # type: ignore[misc]
                    key, real.channels.get(key, []), fake.channels.get(key, [])
                )
            )
        )
    return comparison


def summary(comparison: Comparison) -> str:
    lines = []
    total = Score()
    for category in CATEGORIES:
        score = comparison.scores[category]
        total.add(score.matched, score.total)
        lines.append(f"{category:>14}: {score.matched:5d} / {score.total:5d}  {score.ratio:8.3%}")
    lines.append(f"{'all':>14}: {total.matched:5d} / {total.total:5d}  {total.ratio:8.3%}")
    return "\n".join(lines)


def group_differences(differences: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for difference in differences:
        counts[difference] += 1
    return dict(counts)


# --------------------------------------------------------------------------- running


async def identify(kind: str, host: str, port: int, password: str) -> Target:
    """A target, with the switch-wide values (hostname, addresses) to normalise away."""
    async with Inbound(host, port, password) as client:
        job = await client.bgapi_event("echo identify")
    found = [
        (job.get(f"FreeSWITCH-{name}") or "", f"<{name.lower()}>")
        # The addresses are only compared in the FreeSWITCH-IPv4/6 headers (whose values
        # are not): replacing them everywhere would also rewrite 127.0.0.1 in app data.
        for name in ("Hostname", "Switchname")
    ]
    return Target(kind, host, port, password, tuple((v, t) for v, t in found if v))


async def record(
    target: Target, scenario: Scenario, within: float = 60.0, *, tolerate_failure: bool = False
) -> Transcript:
    """Run ``scenario`` once on ``target``; its normalised transcript.

    With ``tolerate_failure`` a scenario that fails (a fake that never sends an awaited event)
    still gives the transcript recorded so far, ending with the failure as a reply.
    """
    failure: str | None = None
    async with trio.open_nursery() as nursery:
        recorder = Recorder(target, nursery)
        try:
            with trio.fail_after(within):
                await scenario(recorder)
        except Exception as error:
            if not tolerate_failure:
                raise
            failure = f"scenario failed: {type(error).__name__}"
        await recorder.drain()
        nursery.cancel_scope.cancel()
    result = transcript(recorder)
    if failure is not None:
        result.replies.append(failure)
    return result
