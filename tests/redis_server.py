"""A real redis-server for the tests: started on a free loopback port, stopped by its PID.

Use the ``redis_server`` fixture (session-scoped) by importing it into a test
module (``tests/`` is on ``sys.path`` through the root conftest)::

    from redis_server import RedisServer, redis_server, unique_prefix

    __all__ = ["redis_server"]  # the session fixture, re-exported for pytest

However many modules import it, the session runs one server.

Tests are skipped with a clear reason when no ``redis-server`` binary exists
(install the Debian package ``redis-server``). Every test should use its own
key prefix (``unique_prefix()``) rather than flushing the shared server.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest

from waiting import OutputLines

__all__ = [
    "PrivateRedisServer",
    "RedisServer",
    "private_redis_server",
    "redis_server",
    "running_redis_server",
    "unique_prefix",
]

_READY_LINE = "Ready to accept connections"
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 5


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(process: subprocess.Popen[str]) -> bool:
    """Read the server's log until it says it is ready, or it exits, or time runs out.

    A server that cannot bind exits at once: its log ends, and this returns False then.
    """
    assert process.stdout is not None
    # Read (and drained) to the end on a thread, so a chatty server never blocks on a pipe.
    log = OutputLines(process.stdout)
    return log.wait_for(re.escape(_READY_LINE), _START_TIMEOUT) is not None and (
        process.poll() is None
    )


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(_STOP_TIMEOUT)


@contextmanager
def running_redis_server() -> Iterator[RedisServer]:
    """Start a private, non-persistent redis-server on 127.0.0.1 and stop it afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary on PATH (install the Debian package redis-server)")
    with tempfile.TemporaryDirectory(prefix="genesis-trio-redis-") as workdir:
        for _ in range(_PORT_ATTEMPTS):
            port = _free_port()
            process = subprocess.Popen(
                [
                    binary,
                    "--bind", "127.0.0.1",
                    "--port", str(port),
                    "--save", "",
                    "--appendonly", "no",
                    "--daemonize", "no",
                    "--dir", workdir,
                    "--logfile", "",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            try:
                if _wait_until_ready(process):
                    yield RedisServer("127.0.0.1", port, process.pid)
                    return
            finally:
                _stop(process)
            # Most likely another process took the port between probe and bind.
        raise RuntimeError(f"redis-server did not start after {_PORT_ATTEMPTS} attempts")


class PrivateRedisServer:
    """A redis-server of one test's own, which the test may kill and restart on the same port.

    ``appendonly=True`` persists every write (``appendfsync always``) in its
    directory, so a restart finds the data again; otherwise a restart starts empty.
    """

    def __init__(self, workdir: str, *, appendonly: bool) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("no redis-server binary on PATH (install the Debian package redis-server)")
        self._binary = binary
        self._workdir = workdir
        self._appendonly = appendonly
        self.host = "127.0.0.1"
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _command(self, port: int) -> list[str]:
        return [
            self._binary,
            "--bind", self.host,
            "--port", str(port),
            "--save", "",
            "--appendonly", "yes" if self._appendonly else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--dir", self._workdir,
            "--logfile", "",
        ]  # fmt: skip

    def start(self) -> None:
        """Start it: on a free port the first time, on the same port after that."""
        assert self._process is None, "already running"
        # A fresh port may be taken between the probe and the bind: try another. The old
        # one is free again as soon as the killed server was reaped (kill() waits for that);
        # it stays ours to reuse unless another process grabbed it meanwhile, which no retry
        # would fix.
        for _ in range(_PORT_ATTEMPTS if self.port == 0 else 1):
            port = self.port or _free_port()
            process = subprocess.Popen(
                self._command(port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            if _wait_until_ready(process):
                self.port, self._process = port, process
                return
            _stop(process)
        raise RuntimeError(f"redis-server did not start on port {self.port or 'any'}")

    def kill(self) -> None:
        """SIGKILL by PID: no shutdown, no final save."""
        process, self._process = self._process, None
        assert process is not None, "not running"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(_STOP_TIMEOUT)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _stop(process)


@pytest.fixture
def private_redis_server() -> Iterator[Callable[..., PrivateRedisServer]]:
    """``private_redis_server(appendonly=False)``: a started server this test owns."""
    with ExitStack() as stack:

        def start(*, appendonly: bool = False) -> PrivateRedisServer:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="genesis-trio-redis-"))
            server = PrivateRedisServer(workdir, appendonly=appendonly)
            stack.callback(server.stop)
            server.start()
            return server

        yield start


_shared: RedisServer | None = None
_users = 0
_owner = ExitStack()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session, shared even if imported by several conftests."""
    global _shared, _users
    if _shared is None:
        _shared = _owner.enter_context(running_redis_server())
    _users += 1
    try:
        yield _shared
    finally:
        _users -= 1
        if _users == 0:
            _shared = None
            _owner.close()


def unique_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}"
