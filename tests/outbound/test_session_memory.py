"""What a live outbound session holds in memory (tracemalloc, not RSS: deterministic).

An Outbound server may hold thousands of calls at once, each waiting in its
handler for minutes: what one session keeps while it waits is what the
server's memory grows by per call. The peer here plays FreeSWITCH's part
minimally (the recorded connect reply, ``+OK`` to the rest).
"""

from __future__ import annotations

import fnmatch
import gc
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import pytest
import trio
import trio.testing

from esl_captures import read_capture
from genesis_trio import Outbound, Session
from outbound_serving import serving

_RECORDED_UUID = b"737e7aab-770e-4948-bd73-a8a2c25a23c7"
_OK = b"Content-Type: command/reply\nReply-Text: +OK\n\n"
_BYE = (
    b"Content-Type: command/reply\nReply-Text: +OK bye\n\n"
    b"Content-Type: text/disconnect-notice\nContent-Length: 23\n\nDisconnected, goodbye.\n"
)
SESSIONS = 12

pytestmark = pytest.mark.trio


def recorded_connect_reply() -> bytes:
    data = read_capture("outbound_session_plain.bin")
    frame = data[: data.index(b"\n\n") + 2]
    assert _RECORDED_UUID in frame
    assert b"command/reply" in frame
    return frame


@contextmanager
def tracing_allocations() -> Iterator[None]:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start(1)
    try:
        yield
    finally:
        if not was_tracing:
            tracemalloc.stop()


def held_per_session(
    first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, patterns: tuple[str, ...]
) -> float:
    """Bytes allocated in files matching ``patterns`` and still held, per added session."""
    grown = 0
    for stat in last.compare_to(first, "filename"):
        filename = stat.traceback[0].filename.replace("\\", "/")
        if any(fnmatch.fnmatch(filename, pattern) for pattern in patterns):
            grown += stat.size_diff
    return grown / SESSIONS


def anyio_events() -> int:
    return sum(isinstance(o, anyio.Event) for o in gc.get_objects())


@asynccontextmanager
async def live_sessions(
    after_setup: bytes = b"", counts: dict[str, int] | None = None
) -> AsyncIterator[tuple[tracemalloc.Snapshot, tracemalloc.Snapshot, list[Session]]]:
    """A first session alone (the baseline), then SESSIONS more, all waiting in the handler.

    ``after_setup`` is sent to each session once its setup replies went out,
    in a write of its own. ``counts`` gets how many ``anyio.Event`` were alive
    at the two snapshots ("first", "last").
    """
    counts = {} if counts is None else counts
    reply = recorded_connect_reply()
    sessions: list[Session] = []
    baseline: list[tracemalloc.Snapshot] = []
    release = trio.Event()
    all_in = trio.Event()
    first_in = trio.Event()

    async def handler(session: Session) -> None:
        sessions.append(session)
        if len(sessions) == 1:
            first_in.set()
        elif len(sessions) == SESSIONS + 1:
            all_in.set()
        await release.wait()

    async def call(address: tuple[str, int]) -> None:
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            pending = b""
            answered = 0
            leg = str(uuid.uuid4()).encode()
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                pending += data
                out = []
                while b"\n\n" in pending:
                    command, pending = pending.split(b"\n\n", 1)
                    if command.startswith(b"connect"):
                        out.append(reply.replace(_RECORDED_UUID, leg))
                    elif command.startswith(b"exit"):
                        out.append(_BYE)
                    else:
                        out.append(_OK)
                    answered += 1
                await stream.send_all(b"".join(out))
                if answered == 3 and after_setup:
                    await stream.send_all(after_setup)
                if out[-1] is _BYE:
                    return

    app = Outbound(handler, "127.0.0.1", 0)
    with tracing_allocations(), trio.fail_after(60):
        async with serving(app) as address, trio.open_nursery() as peer:
            peer.start_soon(call, address)
            await first_in.wait()
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            counts["first"] = anyio_events()
            baseline.append(tracemalloc.take_snapshot())
            for _ in range(SESSIONS):
                peer.start_soon(call, address)
            await all_in.wait()
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            counts["last"] = anyio_events()
            last = tracemalloc.take_snapshot()
            try:
                yield baseline[0], last, sessions
            finally:
                release.set()


async def test_a_session_holds_its_connect_reply_once_and_undecoded() -> None:
    """The ~100 channel variables of the connect reply are held as received.

    Decoded, they were ~200 strings and two dicts (the reply's headers and the
    channel's data, a copy), about five times the reply's size; now the
    session's context and its channel's data decode them only when read.
    """
    reply_size = len(recorded_connect_reply())
    async with live_sessions() as (first, last, sessions):
        held = held_per_session(
            first, last, ("*/genesis_trio/protocol/*", "*/genesis_trio/channel/*")
        )
        session = sessions[-1]
        assert session.context["Channel-Name"] == "loopback/9000-b"
        assert session.channel.data["Channel-Name"] == "loopback/9000-b"
        assert dict(session.context) == session.channel.data
        assert session.channel.state.freeswitch_name == session.context["Channel-State"]
    assert held < 2 * reply_size, f"{held:.0f} bytes per session for a {reply_size}-byte reply"


async def test_the_reader_does_not_hold_the_last_chunk_it_received() -> None:
    """While it waits for the next bytes, the reader holds none of the last ones.

    A quiet call waits minutes between events; the last chunk read (up to
    64 KiB) used to stay referenced by the reader all that time.
    """
    # An event of another call: routed to nobody, so nothing else keeps its bytes.
    body = b"Event-Name: HEARTBEAT\nUnique-ID: nobody\nPadding: " + b"x" * 30_000 + b"\n"
    frame = b"Content-Length: %d\nContent-Type: text/event-plain\n\n%s" % (len(body), body)
    async with live_sessions(after_setup=frame) as (first, last, _):
        # Where the socket is read (the bytes recv returns are allocated there): trio's
        # socket wrapper, or the connection's own direct reader on a trio socket stream.
        held = held_per_session(
            first, last, ("*/trio/_socket.py", "*/genesis_trio/_stream/_socket.py")
        )
    assert held < 4_000, f"{held:.0f} bytes per session held since the last receive"


async def test_a_channel_s_taps_hold_no_buffer() -> None:
    """A session's channel taps its connection twice for the whole call; the taps
    never buffer an event, so they make no buffer (a deque is ~750 bytes)."""
    async with live_sessions() as (first, last, _):
        held = held_per_session(first, last, ("*/genesis_trio/_subscription.py",))
    assert held < 100, f"{held:.0f} bytes per session in subscriptions"


async def test_a_waiting_session_makes_no_event_nobody_waits_for() -> None:
    """``session.lingering`` / ``disconnected`` and the connection's ``auth_requested``
    and reader-done events are made when first awaited (each ~300 bytes).

    What is left per session: the connection's ``closed`` and the finish event
    AnyIO keeps for each of the session's tasks (connection, reader scope, reader).
    """
    counts: dict[str, int] = {}
    async with live_sessions(counts=counts) as (_, _, sessions):
        session = sessions[-1]
        assert not session.lingering.is_set()
        assert not session.disconnected.is_set()
    per_session = (counts["last"] - counts["first"]) / SESSIONS
    assert per_session <= 5, f"{per_session} events per live session"
    assert session.disconnected.is_set()
