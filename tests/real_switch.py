"""A real FreeSWITCH for the tests: started from the prebuilt bundle, stopped by its PID.

Fixtures (available everywhere through the root ``conftest.py``):

``freeswitch``
    One switch for the whole session, shared by every test that does not disturb
    the others. Tests that use it are marked ``freeswitch``.
``private_freeswitch``
    A switch of the test's own, for destructive tests (killing it, restarting it).

Where the switch comes from, in order:

1. ``GENESIS_TRIO_ESL=host:port:password``: the user's own switch. Tests place calls on
   it (loopback extensions 9000-9010 of ``../shared/freeswitch/README.md`` must exist).
   ``private_freeswitch`` still needs a bundle, since a user's switch is not ours to kill.
2. ``GENESIS_TRIO_FREESWITCH_BUNDLE``: a directory holding ``bin/run-freeswitch``.
3. ``../shared/freeswitch`` beside the repository, installed into
   ``$XDG_CACHE_HOME/genesis-trio/freeswitch`` (``~/.cache`` by default) on first use.

When none is available the tests skip with a one-line reason; with
``GENESIS_TRIO_REQUIRE_FREESWITCH=1`` (set by CI) they fail instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from genesis_trio import Event, Inbound

__all__ = [
    "RealSwitch",
    "channel_exists",
    "freeswitch",
    "inbound",
    "live_channel_uuids",
    "private_freeswitch",
    "running_freeswitch",
    "wait_until",
]

_REPO = Path(__file__).resolve().parents[1]
_SHARED_BUNDLE_SOURCE = _REPO / ".." / "shared" / "freeswitch"
_START_ATTEMPTS = 4
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class RealSwitch:
    """Where a real switch listens, and (for ours) how to reach its process and files."""

    host: str
    port: int
    password: str = field(repr=False)
    pid: int | None = None
    instance_dir: Path | None = None
    sip_port: int | None = None

    def inbound(self, **options: object) -> Inbound:
        return Inbound(self.host, self.port, self.password, **options)  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL the switch (ours only): every connection to it drops at once."""
        if self.pid is None:
            raise RuntimeError("only a switch started by the tests can be killed")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    @property
    def log_path(self) -> Path | None:
        return None if self.instance_dir is None else self.instance_dir / "log" / "freeswitch.log"


def _required() -> bool:
    return os.environ.get("GENESIS_TRIO_REQUIRE_FREESWITCH", "") not in ("", "0")


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(f"{reason} (GENESIS_TRIO_REQUIRE_FREESWITCH is set)", pytrace=False)
    pytest.skip(reason)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genesis-trio"


def _bundle() -> Path | None:
    """The bundle's root (holding bin/run-freeswitch), installing it from ../shared if needed."""
    configured = os.environ.get("GENESIS_TRIO_FREESWITCH_BUNDLE")
    if configured:
        root = Path(configured)
        if (root / "bin" / "run-freeswitch").is_file():
            return root
        _unavailable(f"GENESIS_TRIO_FREESWITCH_BUNDLE={configured} holds no bin/run-freeswitch")
    installer = _SHARED_BUNDLE_SOURCE / "install"
    if not installer.is_file():
        return None
    destination = _cache_dir()
    root = destination / "freeswitch"
    if not (root / "bin" / "run-freeswitch").is_file():
        result = subprocess.run(
            [str(installer), str(destination)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            _unavailable(f"installing the FreeSWITCH bundle failed: {result.stderr.strip()[-300:]}")
    return root


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # Not synchronisation in a test: a bounded poll for a process we own to exit.
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_freeswitch(**options: str) -> Iterator[RealSwitch]:
    """Start a private FreeSWITCH on free loopback ports; stop it by its PID afterwards.

    ``options`` are extra ``run-freeswitch`` flags without the dashes
    (``outbound_port="40123"``, ``password="secret"``).
    """
    bundle = _bundle()
    if bundle is None:
        _unavailable("no FreeSWITCH: set GENESIS_TRIO_ESL or GENESIS_TRIO_FREESWITCH_BUNDLE")
        raise AssertionError("unreachable")
    password = options.get("password", "ClueCon")
    extra: list[str] = []
    for name, value in options.items():
        extra += [f"--{name.replace('_', '-')}", value]
    instance = Path(tempfile.mkdtemp(prefix="genesis-trio-fs-"))
    failure = ""
    try:
        for _ in range(_START_ATTEMPTS):
            esl_port, sip_port = _free_port(), _free_port()
            command = [
                str(bundle / "bin" / "run-freeswitch"),
                str(instance),
                "--esl-port", str(esl_port),
                "--sip-port", str(sip_port),
                "--loglevel", "info",
                "--timeout", "30",
                *extra,
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode == 0:
                pid = int(result.stdout.strip().splitlines()[-1])
                try:
                    yield RealSwitch("127.0.0.1", esl_port, password, pid, instance, sip_port)
                finally:
                    _stop(pid)
                return
            # Most likely a port was taken between the probe and FreeSWITCH's bind.
            failure = (result.stderr or result.stdout).strip()[-2000:]
        raise RuntimeError(f"FreeSWITCH did not start after {_START_ATTEMPTS} attempts:\n{failure}")
    finally:
        shutil.rmtree(instance, ignore_errors=True)


def _external() -> RealSwitch | None:
    configured = os.environ.get("GENESIS_TRIO_ESL")
    if not configured:
        return None
    host, separator, rest = configured.partition(":")
    port, separator2, password = rest.partition(":")
    if not (separator and separator2 and port.isdigit()):
        pytest.fail(f"GENESIS_TRIO_ESL must be host:port:password, got {host}:…", pytrace=False)
    return RealSwitch(host, int(port), password)


_shared_switch: RealSwitch | None = None
_shared_owner = contextlib.ExitStack()


@pytest.fixture(scope="session")
def freeswitch() -> Iterator[RealSwitch]:
    """The session's shared real switch (the user's own, or one started from the bundle)."""
    global _shared_switch
    external = _external()
    if external is not None:
        yield external
        return
    if _shared_switch is None:
        _shared_switch = _shared_owner.enter_context(running_freeswitch())
    try:
        yield _shared_switch
    finally:
        pass


@pytest.fixture
def private_freeswitch() -> Iterator[RealSwitch]:
    """A switch for this test alone: kill it, restart it, fill it."""
    with running_freeswitch() as switch:
        yield switch


def pytest_sessionfinish() -> None:
    global _shared_switch
    _shared_switch = None
    _shared_owner.close()


@contextlib.asynccontextmanager
async def inbound(switch: RealSwitch, **options: object) -> AsyncIterator[Inbound]:
    async with switch.inbound(**options) as client:
        yield client


async def channel_exists(client: Inbound, uuid_: str) -> bool:
    """Whether the switch has this channel now (``uuid_exists``, read from the core at once)."""
    return (await client.api(f"uuid_exists {uuid_}")).strip() == "true"


async def live_channel_uuids(client: Inbound) -> set[str]:
    """The uuids of every channel in ``show channels as json``.

    That list comes from the switch's own database, written a moment after each change:
    poll it with :func:`wait_until`, or ask :func:`channel_exists` for one channel.
    """
    rows = json.loads(await client.api("show channels as json")).get("rows", [])
    return {str(row["uuid"]) for row in rows}


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, within: float = 10.0, interval: float = 0.05
) -> None:
    """Poll the switch until ``predicate()`` holds, failing after ``within`` seconds.

    Only for switch state that sends no event (``show channels``, files on disk); where the
    switch sends an event, wait for the event instead.
    """
    with trio.fail_after(within):
        while not await predicate():  # noqa: ASYNC110 - switch state that sends no event
            await trio.sleep(interval)


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def event_matches(name: str, uuid_: str) -> Callable[[Event], bool]:
    return lambda event: event.name == name and event.unique_id == uuid_
