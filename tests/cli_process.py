"""``genesis-trio`` as a real process: started, read line by line, signalled by PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import trio

CLI = [sys.executable, "-m", "genesis_trio.cli"]


@dataclass
class CLIProcess:
    process: trio.Process
    stderr_lines: list[str] = field(default_factory=list)
    stdout_lines: list[str] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)
    _buffers: dict[str, bytes] = field(default_factory=lambda: {"stdout": b"", "stderr": b""})

    async def _pump(self, name: str, stream: trio.abc.ReceiveStream) -> None:
        lines = self.stdout_lines if name == "stdout" else self.stderr_lines
        async for chunk in stream:
            data = self._buffers[name] + chunk
            *complete, self._buffers[name] = data.split(b"\n")
            lines.extend(line.decode() for line in complete)
            self._changed.set()
            self._changed = trio.Event()
        if self._buffers[name]:
            lines.append(self._buffers[name].decode())
        self._changed.set()

    async def wait_for_line(self, pattern: str, *, stream: str = "stderr") -> re.Match[str]:
        """The first line of ``stream`` matching ``pattern`` (waits for it, 60 s at most)."""
        lines = self.stdout_lines if stream == "stdout" else self.stderr_lines
        with trio.fail_after(60):
            while True:
                for line in lines:
                    if found := re.search(pattern, line):
                        return found
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"process exited {self.process.returncode} without {pattern!r}:\n"
                        + "\n".join(self.stdout_lines + self.stderr_lines)
                    )
                await self._changed.wait()

    def signal(self, signum: signal.Signals) -> None:
        os.kill(self.process.pid, signum)

    async def wait(self) -> int:
        with trio.fail_after(60):
            return await self.process.wait()

    @property
    def output(self) -> str:
        return "\n".join(self.stdout_lines + self.stderr_lines)


@asynccontextmanager
async def cli_process(
    *args: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[CLIProcess]:
    """Run ``genesis-trio ARGS`` for the block; killed at the end if still running."""
    # The ops endpoints default to port 8000: tests that want them pass a free port.
    environment = {**os.environ, "ESL_OPS_PORT": "0", **(env or {})}
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                [*CLI, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
                env=environment,
            )
        )
        assert process.stdout is not None
        assert process.stderr is not None
        running = CLIProcess(process)
        nursery.start_soon(running._pump, "stdout", process.stdout)
        nursery.start_soon(running._pump, "stderr", process.stderr)
        try:
            yield running
            await running.wait()
        finally:
            if process.returncode is None:
                process.kill()


def listening_address(match: re.Match[str]) -> tuple[str, int]:
    return match.group(1), int(match.group(2))


OUTBOUND_LISTENING = r"outbound server listening on (\S+):(\d+)"


def free_port() -> int:
    """A loopback port nothing listens on right now (for options where 0 means "off")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
