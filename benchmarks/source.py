"""The event source both clients are measured against: a minimal ESL blaster.

It runs in its own process so its CPU time never competes with the client's
interpreter. Every frame it sends is a byte-for-byte copy of a frame recorded
from a real FreeSWITCH (the lifecycle captures that ``genesis_trio.testing``
ships, identical to ``../shared/captures``); they are cut out of the captures
once at start-up and written in large ``sendall`` calls, so the
source costs a kernel copy per event, not a Python loop.

Behaviour per connection, as FreeSWITCH's mod_event_socket does it:
``auth/request`` greeting; ``auth`` (password checked); ``event``/``events``
``plain|json`` -> ``+OK event listener enabled <format>`` followed at once by
exactly ``--events`` recorded events of that format, cycling through the
recorded lifecycle; ``filter`` -> ``+OK filter added. [h]=[v]`` (filters are
acknowledged, not applied: both clients get the same bytes); ``api status`` ->
the recorded api/response; ``exit`` -> ``+OK bye`` + disconnect notice, close.
Commands that arrive together are answered with one write, like pipelined
replies from the switch.

Usage: ``python -m benchmarks.source --port 0 --events 100000``; the first
line on stdout is a JSON object with the port and what will be sent.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import socket
import socketserver
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

__all__ = ["Recording", "load_recording", "split_frames"]

PASSWORD: Final = "ClueCon"
CAPTURE_FILES: Final = {"plain": "inbound_plain_lifecycle", "json": "inbound_json_lifecycle"}
_CONTENT_TYPES: Final = {"plain": b"text/event-plain", "json": b"text/event-json"}


# The api status reply exactly as recorded (inbound_auth_ok_api_status.bin).
RECORDED_API_STATUS: Final = (
    b"Content-Type: api/response\nContent-Length: 333\n\n"
    b"UP 0 years, 0 days, 0 hours, 0 minutes, 2 seconds, 890 milliseconds, 830 microseconds\n"
    b"FreeSWITCH (Version 1.11.3-dev  64bit) is ready\n"
    b"2 session(s) since startup\n"
    b"0 session(s) - peak 2, last 5min 2 \n"
    b"0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
    b"1000 session(s) max\n"
    b"min idle cpu 0.00/100.00\n"
    b"Current Stack Size/Max 240K/8192K\n"
)


def captures_dir() -> Path | None:
    """``$GENESIS_TRIO_CAPTURES``, else the repository's ``tests/captures``."""
    configured = os.environ.get("GENESIS_TRIO_CAPTURES")
    path = (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[1] / "tests" / "captures"
    )
    return path if path.is_dir() else None


def capture_bytes(name: str) -> bytes:
    """A received-bytes capture: from the captures folder, else the copy that
    genesis_trio.testing ships (the same bytes, gzipped)."""
    folder = captures_dir()
    if folder is not None and (folder / f"{name}.bin").is_file():
        return (folder / f"{name}.bin").read_bytes()
    packaged = resources.files("genesis_trio.testing").joinpath("data", f"{name}.bin.gz")
    return gzip.decompress(packaged.read_bytes())


def split_frames(data: bytes) -> list[tuple[dict[bytes, bytes], bytes]]:
    """Each frame of a received-bytes capture: (outer headers, exact raw bytes)."""
    frames: list[tuple[dict[bytes, bytes], bytes]] = []
    position = 0
    while position < len(data):
        while data[position : position + 1] == b"\n":
            position += 1
        if position >= len(data):
            break
        end = data.index(b"\n\n", position)
        headers = dict(
            line.split(b": ", 1) for line in data[position:end].split(b"\n") if b": " in line
        )
        stop = end + 2 + int(headers.get(b"Content-Length", b"0"))
        frames.append((headers, data[position:stop]))
        position = stop
    return frames


def _event_names(frame: bytes, event_format: str) -> list[str]:
    """The names a client may file this event under.

    FreeSWITCH can merge two events into one frame (the recorded uuid_broadcast
    sends a COMMAND event whose headers go on with a whole PRIVATE_COMMAND
    event): the first Event-Name is the event's name, but a parser that keeps
    the last value (a dict) or splits the frame sees the second one too.
    """
    body = frame.split(b"\n\n", 1)[1]
    pairs: list[tuple[str, str]]
    if event_format == "json":
        pairs = [(k, str(v)) for k, v in json.loads(body, object_pairs_hook=list)]
    else:
        head = body.split(b"\n\n", 1)[0].decode()
        pairs = [(k, v) for k, _, v in (line.partition(": ") for line in head.split("\n"))]
    names = [v for k, v in pairs if k == "Event-Name"]
    subclasses = [v for k, v in pairs if k == "Event-Subclass"]
    if names and names[0] == "CUSTOM" and subclasses:
        return [subclasses[0]]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Recording:
    """The recorded event frames of one format, and the recorded api status reply."""

    event_format: str
    frames: tuple[bytes, ...]
    names: tuple[str, ...]

    @property
    def cycle(self) -> bytes:
        return b"".join(self.frames)

    def payload_chunks(self, count: int, chunk_cycles: int = 4) -> list[bytes]:
        """``count`` event frames as a few big buffers, cycling through the recording."""
        cycles, remainder = divmod(count, len(self.frames))
        big = self.cycle * chunk_cycles
        chunks = [big] * (cycles // chunk_cycles)
        chunks += [self.cycle] * (cycles % chunk_cycles)
        if remainder:
            chunks.append(b"".join(self.frames[:remainder]))
        return chunks


def load_recording(event_format: str) -> Recording:
    content_type = _CONTENT_TYPES[event_format]
    frames = tuple(
        raw
        for headers, raw in split_frames(capture_bytes(CAPTURE_FILES[event_format]))
        if headers.get(b"Content-Type") == content_type
    )
    names = tuple(
        dict.fromkeys(name for frame in frames for name in _event_names(frame, event_format))
    )
    return Recording(event_format, frames, names)


def load_api_status() -> bytes:
    folder = captures_dir()
    path = folder / "inbound_auth_ok_api_status.bin" if folder is not None else None
    if path is None or not path.is_file():
        return RECORDED_API_STATUS
    for headers, raw in split_frames(path.read_bytes()):
        if headers.get(b"Content-Type") == b"api/response":
            return raw
    raise LookupError(f"no api/response in {path}")


def _reply(text: str) -> bytes:
    return f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode()


_GOODBYE: Final = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
_BYE: Final = (
    _reply("+OK bye")
    + b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(_GOODBYE)
    + _GOODBYE
)


class _Blaster(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Genesis closes without saying exit; that is not an error here.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            self._session(sock)

    def _session(self, sock: socket.socket) -> None:
        sock.sendall(b"Content-Type: auth/request\n\n")
        pending = b""
        authenticated = blasted = False
        while True:
            data = sock.recv(65536)
            if not data:
                return
            pending += data
            out: list[bytes] = []
            blast: list[bytes] = []
            closing = False
            while (end := pending.find(b"\n\n")) >= 0:
                line = pending[:end].decode("utf-8", "replace").strip()
                pending = pending[end + 2 :]
                words = line.split()
                verb = words[0].lower() if words else ""
                if not authenticated:
                    authenticated = words[1:2] == [PASSWORD] and verb == "auth"
                    out.append(_reply("+OK accepted" if authenticated else "-ERR invalid"))
                    closing = not authenticated
                elif verb in ("event", "events"):
                    event_format = "json" if "json" in words[1:2] else "plain"
                    out.append(_reply(f"+OK event listener enabled {event_format}"))
                    if not blasted:
                        blasted = True
                        blast = self.server.payloads[event_format]
                elif verb == "filter":
                    header, _, value = line[len("filter") :].strip().partition(" ")
                    out.append(_reply(f"+OK filter added. [{header}]=[{value}]"))
                elif verb == "api" and words[1:] == ["status"]:
                    out.append(self.server.api_status)
                elif verb == "api":
                    body = f"-ERR {' '.join(words[1:2])} Command not found!\n".encode()
                    out.append(
                        b"Content-Type: api/response\nContent-Length: %d\n\n" % len(body) + body
                    )
                elif verb == "noevents":
                    out.append(_reply("+OK no longer listening for events"))
                elif verb == "exit":
                    out.append(_BYE)
                    closing = True
                else:
                    out.append(_reply("-ERR command not found"))
                if closing:
                    break
            if out:
                sock.sendall(b"".join(out))
            for chunk in blast:
                sock.sendall(chunk)
            if closing:
                sock.shutdown(socket.SHUT_WR)
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], events: int) -> None:
        self.recordings = {fmt: load_recording(fmt) for fmt in CAPTURE_FILES}
        self.payloads = {fmt: rec.payload_chunks(events) for fmt, rec in self.recordings.items()}
        self.api_status = load_api_status()
        super().__init__(address, _Blaster)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events", type=int, default=100_000, help="events sent per subscription")
    args = parser.parse_args(argv)
    server = _Server((args.host, args.port), args.events)
    host, port = server.server_address[:2]
    ready = {
        "host": host,
        "port": port,
        "pid": os.getpid(),
        "events": args.events,
        "names": {fmt: list(rec.names) for fmt, rec in server.recordings.items()},
        "recorded": {fmt: len(rec.frames) for fmt, rec in server.recordings.items()},
        "bytes": {fmt: sum(map(len, chunks)) for fmt, chunks in server.payloads.items()},
    }
    print(json.dumps(ready), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
