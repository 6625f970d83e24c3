"""A real FreeSWITCH for the tests: started from the prebuilt bundle, stopped by its PID.

Fixtures (available everywhere through the root ``conftest.py``):

``freeswitch``
    One switch for the whole session, shared by every test that does not disturb
    the others. Tests that use it are marked ``freeswitch``.
``private_freeswitch``
    A switch of the test's own, for destructive tests (killing it, restarting it:
    ``stop_freeswitch(switch)`` then ``start_freeswitch_again(switch)`` on the same ports).

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
import dataclasses
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from genesis_trio import Channel, Event, GenesisError, Inbound

# wait_until: only for switch state that sends no event (``show channels``, files on disk).
from waiting import stop_pid, wait_until

__all__ = [
    "TAG_VARIABLE",
    "CallWatch",
    "RealSwitch",
    "channel_exists",
    "freeswitch",
    "inbound",
    "live_channel_uuids",
    "other_leg",
    "placed_call",
    "private_freeswitch",
    "running_freeswitch",
    "start_freeswitch_again",
    "stop_freeswitch",
    "wait_until",
    "watch_calls",
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
    # FreeSWITCH daemonises: not our child, so its exit is watched through a pidfd.
    stop_pid(pid, _STOP_TIMEOUT)


# Instance directory -> (run-freeswitch command, PID now) of a private switch, so that
# stop_freeswitch / start_freeswitch_again can restart it on the same ports.
_instances: dict[Path, tuple[list[str], int]] = {}


def stop_freeswitch(switch: RealSwitch) -> None:
    """Stop a private switch by its PID (SIGTERM, SIGKILL if it lingers); its files stay.

    ``start_freeswitch_again`` brings it back on the same ports.
    """
    if switch.instance_dir is None or switch.instance_dir not in _instances:
        raise RuntimeError("only a switch started by running_freeswitch can be stopped")
    _stop(_instances[switch.instance_dir][1])
    # As stop-freeswitch does: the exited process may linger as a zombie until PID 1 reaps
    # it, and run-freeswitch would take a live PID in this file for a running instance.
    (switch.instance_dir / "run" / "run-freeswitch.pid").unlink(missing_ok=True)


def start_freeswitch_again(switch: RealSwitch, attempts: int = 10) -> RealSwitch:
    """Start a stopped private switch again: same instance, same ESL and SIP ports.

    The old listening sockets may take a moment to be released: a start that
    fails is retried a bounded number of times. Returns it with its new PID.
    """
    if switch.instance_dir is None or switch.instance_dir not in _instances:
        raise RuntimeError("only a switch started by running_freeswitch can be restarted")
    command, _ = _instances[switch.instance_dir]
    failure = ""
    for _ in range(attempts):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            pid = int(result.stdout.strip().splitlines()[-1])
            _instances[switch.instance_dir] = (command, pid)
            return dataclasses.replace(switch, pid=pid)
        failure = (result.stderr or result.stdout).strip()[-2000:]
    raise RuntimeError(f"FreeSWITCH did not start again after {attempts} attempts:\n{failure}")


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
                _instances[instance] = (command, pid)
                try:
                    yield RealSwitch("127.0.0.1", esl_port, password, pid, instance, sip_port)
                finally:
                    # The PID it has now: start_freeswitch_again may have replaced it.
                    _stop(_instances.pop(instance, (command, pid))[1])
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


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def event_matches(name: str, uuid_: str) -> Callable[[Event], bool]:
    return lambda event: event.name == name and event.unique_id == uuid_


async def other_leg(client: Inbound, uuid_: str) -> str:
    """The uuid of the loopback leg paired with ``uuid_`` (``-a`` gives ``-b`` and back)."""
    return (await client.api(f"uuid_getvar {uuid_} other_loopback_leg_uuid")).strip()


@contextlib.asynccontextmanager
async def placed_call(
    client: Inbound, extension: str, watch: CallWatch, **variables: str
) -> AsyncIterator[Channel]:
    """``Channel.create`` of ``loopback/<extension>/default``, hung up when the block ends."""
    channel = await Channel.create(
        client, f"loopback/{extension}/default", {**watch.variables, **variables}
    )
    try:
        yield channel
    finally:
        with trio.CancelScope(shield=True), contextlib.suppress(GenesisError, TimeoutError):
            await channel.hangup(timeout=10)


#: The originate variable :class:`CallWatch` recognises a test's channels by.
TAG_VARIABLE = "genesis_test_call"

# What a CallWatch records: a channel's life and the media it ran (not CHANNEL_STATE: noise).
_WATCHED_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "DTMF",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "RECORD_START",
    "RECORD_STOP",
)


class CallWatch:
    """What the switch did to one test's channels, seen on a connection of its own.

    Put :attr:`variables` on every originate of the test (``Channel.create``,
    ``RingGroup.ring(variables=...)``, a raw ``originate {...}``): mod_loopback
    copies them to the ``-b`` leg too, so both legs of each call count as the
    test's. The watch is independent of the client under test, so what it
    records is what FreeSWITCH sent, not what our client believes.
    """

    def __init__(self, client: Inbound, tag: str) -> None:
        #: The watch's own connection (for ``api`` checks of the switch's state).
        self.client = client
        self.tag = tag
        self._by_uuid: dict[str, list[Event]] = {}
        self._ours: list[str] = []
        self._arrived = trio.Event()

    @property
    def variables(self) -> dict[str, str]:
        return {TAG_VARIABLE: self.tag}

    def file(self, event: Event) -> None:
        uuid_ = event.unique_id
        if uuid_ is None:
            return
        # Events of every channel are kept until we know whose they are: the
        # switch may send a leg's first events before the CHANNEL_CREATE that
        # carries the variables.
        self._by_uuid.setdefault(uuid_, []).append(event)
        if event.variable(TAG_VARIABLE) == self.tag and uuid_ not in self._ours:
            self._ours.append(uuid_)
        self._arrived.set()
        self._arrived = trio.Event()

    @property
    def uuids(self) -> list[str]:
        """The test's channels, in the order the switch announced them."""
        return list(self._ours)

    def events(self, uuid_: str | None = None) -> list[Event]:
        """The events of one channel (or of all the test's channels), in arrival order."""
        if uuid_ is not None:
            return list(self._by_uuid.get(uuid_, ()))
        ours = set(self._ours)
        return [e for e in itertools.chain(*self._by_uuid.values()) if e.unique_id in ours]

    def names(self, uuid_: str) -> list[str]:
        return [event.name or "?" for event in self._by_uuid.get(uuid_, ())]

    def named(self, channel_name: str) -> list[str]:
        """The test's channels called ``channel_name`` (``loopback/9004-a``)."""
        return [
            u
            for u in self._ours
            if any(e.get("Channel-Name") == channel_name for e in self._by_uuid[u])
        ]

    def find(self, predicate: Callable[[Event], bool]) -> list[Event]:
        return [event for event in self.events() if predicate(event)]

    def alive(self) -> list[str]:
        """The test's channels that have not sent CHANNEL_DESTROY yet."""
        return [u for u in self._ours if "CHANNEL_DESTROY" not in self.names(u)]

    async def wait_for(
        self, predicate: Callable[[Event], bool], *, within: float = 15.0, count: int = 1
    ) -> list[Event]:
        """Wait until ``count`` events of the test's channels satisfy ``predicate``."""
        with trio.fail_after(within):
            while True:
                arrived = self._arrived
                found = self.find(predicate)
                if len(found) >= count:
                    return found
                await arrived.wait()

    async def wait_event(self, name: str, uuid_: str, *, within: float = 15.0) -> Event:
        """The first ``name`` event of channel ``uuid_`` (at once if it already came)."""
        found = await self.wait_for(
            lambda event: event.name == name and event.unique_id == uuid_, within=within
        )
        return found[0]

    async def wait_channels(self, count: int, *, within: float = 15.0) -> list[str]:
        """Wait until the switch has announced ``count`` channels of the test."""
        with trio.fail_after(within):
            while len(self._ours) < count:
                await self._arrived.wait()
        return self.uuids

    async def assert_all_gone(self, channels: int, *, within: float = 20.0) -> None:
        """All ``channels`` of the test were destroyed: their events say so, and so does the switch.

        The count is needed because the switch sends events from several threads: a
        ``-b`` leg's CHANNEL_CREATE can reach us after its ``-a`` leg's CHANNEL_DESTROY.
        """
        with trio.fail_after(within):
            while len(self._ours) < channels or self.alive():
                await self._arrived.wait()
        for uuid_ in self._ours:
            assert not await channel_exists(self.client, uuid_), f"{uuid_} still exists"
        ours = set(self._ours)

        async def none_listed() -> bool:
            return not (ours & await live_channel_uuids(self.client))

        await wait_until(none_listed, within=within)

    async def kill_leftovers(self, within: float = 5.0) -> None:
        """Hang up what the test left behind (never other tests' calls: no ``hupall``)."""
        with trio.move_on_after(within) as scope:
            scope.shield = True
            for uuid_ in self.alive():
                await self.client.api(f"uuid_kill {uuid_}", check=False)
            while self.alive():
                await self._arrived.wait()


@contextlib.asynccontextmanager
async def watch_calls(switch: RealSwitch) -> AsyncIterator[CallWatch]:
    """Record the test's channels (see :class:`CallWatch`); hang up leftovers at the end."""
    async with switch.inbound() as client:
        watch = CallWatch(client, unique_name("call"))
        async with client.subscribe(*_WATCHED_EVENTS, max_buffer=1_000_000) as events:

            async def pump() -> None:
                with contextlib.suppress(GenesisError):
                    async for event in events:
                        watch.file(event)

            # In the connection's own task group: no nursery of ours wraps the test's errors.
            client.connection.start_soon(pump, name="call watch")
            try:
                yield watch
            finally:
                await watch.kill_leftovers()
