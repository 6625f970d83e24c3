"""Waiting in tests without sleeping as synchronisation.

- :func:`wait_until`: the one bounded poll, for state that sends no notification
  (another process's ``/ready``, a Redis key running out, the switch's ``show channels``).
  Everything that can notify is waited for instead: a ``trio.Event``, a line of output, an
  ESL event, a process exiting.
- :func:`wait_for_exit`: a process (ours, but maybe not our child: a daemonised FreeSWITCH)
  exiting, through a pidfd (Linux): woken by the exit itself, not by polling ``kill(pid, 0)``.
- :class:`OutputLines`: a ``subprocess.Popen`` text stream read line by line on a thread, so
  synchronous tests can wait for a readiness line with a deadline.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import threading
from collections.abc import Awaitable, Callable
from typing import IO

import trio

__all__ = [
    "OutputLines",
    "output_lines",
    "stop_pid",
    "terminate",
    "wait_for_exit",
    "wait_until",
]


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    what: str | None = None,
) -> None:
    """Poll ``predicate()`` until it holds; ``trio.TooSlowError`` after ``within`` seconds.

    Only for state that nothing announces: where something can notify (an event, a line of
    output, an ESL event), wait for that instead. ``what`` names the awaited state in the
    failure (the predicate's name by default).
    """
    with trio.move_on_after(within):
        while not await predicate():  # noqa: ASYNC110 - state that sends no notification
            await trio.sleep(interval)
        return
    described = what or getattr(predicate, "__name__", repr(predicate))
    raise trio.TooSlowError(f"still not true after {within} s: {described}")


def wait_for_exit(pidfd: int, timeout: float) -> bool:
    """Whether the process of ``pidfd`` (from ``os.pidfd_open``) exited within ``timeout`` s.

    A pidfd turns readable when its process exits, child of ours or not.
    """
    readable, _, _ = select.select([pidfd], [], [], timeout)
    return bool(readable)


def stop_pid(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``, SIGKILL it if it has not exited after ``timeout`` s; return once gone.

    Signals go through a pidfd opened first, so a PID reused meanwhile is never hit.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                signal.pidfd_send_signal(pidfd, signum)
            except ProcessLookupError:
                return
            if wait_for_exit(pidfd, timeout):
                return
        raise RuntimeError(f"process {pid} still runs {timeout} s after SIGKILL")
    finally:
        os.close(pidfd)


class OutputLines:
    """The lines of a child's text stream, read on a daemon thread until it closes.

    The stream is drained to its end, so a chatty child never blocks on a full pipe.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str] | None:
        """The first line matching ``pattern``; None if the stream closed or time ran out."""
        checked = 0
        with self._changed:
            # wait_for's predicate runs each time the reader adds a line.
            def found() -> bool:
                nonlocal checked
                while checked < len(self.lines):
                    if re.search(pattern, self.lines[checked]):
                        return True
                    checked += 1
                return self.closed

            self._changed.wait_for(found, timeout)
            if checked < len(self.lines):
                return re.search(pattern, self.lines[checked])
            return None

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def join(self, timeout: float) -> str:
        """All the text, once the stream has closed (the child exited)."""
        self._thread.join(timeout)
        return self.text


def output_lines(process: subprocess.Popen[str]) -> tuple[OutputLines, OutputLines]:
    """Read a child's stdout and stderr (both ``PIPE``, text) line by line from now on."""
    assert process.stdout is not None
    assert process.stderr is not None
    return OutputLines(process.stdout), OutputLines(process.stderr)


def terminate(process: subprocess.Popen[str], timeout: float) -> None:
    """Stop a child of ours: SIGTERM, SIGKILL if it lingers, and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
