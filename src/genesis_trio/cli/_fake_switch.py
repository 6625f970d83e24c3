"""``genesis-trio fake-switch``: the built-in fake FreeSWITCH as a process of its own.

It serves inbound ESL like the real test switch and can make calls on its own:
into an outbound app (``--call-socket``), as background traffic (``--traffic``),
with digits scripted per destination (``--dtmf``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import trio

from ..testing import Destination, FakeChannel, FakeFreeSWITCH
from ._run import report_user_error, run_until_signal

__all__ = ["FakeSwitchOptions", "parse_address", "parse_dtmf", "run_fake_switch"]


@dataclass(frozen=True)
class FakeSwitchOptions:
    host: str = "127.0.0.1"
    port: int = 8021
    password: str = "ClueCon"
    answer_delay: float = 1.0
    call_socket: tuple[str, int] | None = None
    calls: int = 1
    rate: float = 1.0
    caller: str = "1000"
    destination: str = "9000"
    call_duration: float | None = None
    traffic: float = 0.0
    dtmf: Sequence[tuple[str, str]] = field(default_factory=tuple)
    dtmf_after: float = 1.0
    keep_serving: bool = False
    outbound_port: int = 8084


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8084`` for IPv6) -> ``(host, port)``."""
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def parse_dtmf(text: str) -> tuple[str, str]:
    """``DESTINATION=DIGITS`` -> ``(destination, digits)``, the digits checked."""
    destination, separator, digits = text.partition("=")
    if not separator or not destination or not digits:
        raise ValueError(f"expected DESTINATION=DIGITS, got {text!r}")
    Destination(dtmf=digits)  # refuses what is not DTMF
    if destination.startswith("loopback/"):
        # The dialplan runs the -b leg; its caller's digits go in with uuid_send_dtmf.
        raise ValueError("a loopback/ call's digits are sent with uuid_send_dtmf, not --dtmf")
    return destination, digits


def _say(text: str) -> None:
    print(text, flush=True)


def _matches(value: str, pattern: str) -> bool:
    return value == pattern or fnmatch.fnmatchcase(value, pattern)


def configure_routes(fake: FakeFreeSWITCH, options: FakeSwitchOptions) -> None:
    """``user/<n>`` answers after ``answer_delay``; ``--dtmf`` scripts dial paths."""
    fake.add_destination("user/*", Destination(answer_after=options.answer_delay))
    fake.default_outbound_port = options.outbound_port
    for target, digits in options.dtmf:
        if "/" not in target:
            continue  # a destination number: the digits of --call-socket calls
        base = fake.destination_for(target) or Destination(answer_after=options.answer_delay)
        fake.add_destination(
            target, dataclasses.replace(base, dtmf=digits, dtmf_after=options.dtmf_after)
        )


def _socket_call_digits(options: FakeSwitchOptions) -> str:
    for target, digits in options.dtmf:
        if "/" not in target and _matches(options.destination, target):
            return digits
    return ""


def describe_call(channel: FakeChannel) -> str:
    """One line: what the call ran and how it ended."""
    ran = ", ".join(
        f"{run.name} {run.data}".strip()
        for run in channel.applications
        if run.name != "socket"  # every such call runs it; the list is about the app
    )
    return (
        f"{'answered' if channel.answered else 'not answered'}"
        f"; ran: {ran or 'nothing'}"
        f"; hangup cause {channel.hangup_cause}"
    )


async def _place_socket_calls(fake: FakeFreeSWITCH, options: FakeSwitchOptions) -> int:
    """``--calls`` calls into the outbound app; returns how many it answered."""
    assert options.call_socket is not None
    host, port = options.call_socket
    digits = _socket_call_digits(options)
    answered = 0

    async def one_call(number: int) -> None:
        nonlocal answered
        channel = await fake.call_socket(
            (host, port),
            caller_id_number=options.caller,
            destination_number=options.destination,
            hangup_after=options.call_duration,
            dtmf=digits,
            dtmf_after=options.dtmf_after,
        )
        _say(f"call {number}/{options.calls} {channel.uuid} -> {host}:{port}")
        await channel.wait_ended()
        answered += channel.answered
        _say(f"call {number}/{options.calls} {channel.uuid}: {describe_call(channel)}")

    async with trio.open_nursery() as nursery:
        for number in range(1, options.calls + 1):
            nursery.start_soon(one_call, number)
            if number < options.calls and options.rate > 0:
                await trio.sleep(1 / options.rate)
    return answered


async def _traffic(fake: FakeFreeSWITCH, rate: float) -> None:
    """Background calls between directory users, so a Consumer has events to see."""
    rng = random.Random()

    async def one_call(number: int) -> None:
        callee = rng.choice(("1000", "1001"))
        caller = "1001" if callee == "1000" else "1000"
        # The callee answers after --answer-delay; `sleep` is the length of the call.
        await fake.api(
            f"originate {{origination_caller_id_number={caller},traffic_call={number}}}"
            f"user/{callee} &sleep({rng.randint(2000, 8000)})"
        )

    async with trio.open_nursery() as nursery:
        for number in itertools.count(1):
            nursery.start_soon(one_call, number)
            await trio.sleep(1 / rate)


async def serve_fake_switch(
    options: FakeSwitchOptions,
    *,
    task_status: trio.TaskStatus[FakeFreeSWITCH] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Serve until cancelled (or, with ``--call-socket``, until its calls ended)."""
    fake = FakeFreeSWITCH(password=options.password, host=options.host, port=options.port)
    configure_routes(fake, options)
    async with trio.open_nursery() as nursery:
        bound_host, bound_port = await nursery.start(fake.serve)
        _say(f"fake FreeSWITCH listening on {bound_host}:{bound_port} (Ctrl-C to stop)")
        task_status.started(fake)
        if options.traffic > 0:
            nursery.start_soon(_traffic, fake, options.traffic)
            _say(f"background traffic: {options.traffic:g} calls/s between user/1000 and 1001")
        if options.call_socket is None:
            await trio.sleep_forever()
        answered = await _place_socket_calls(fake, options)
        if options.keep_serving:
            await trio.sleep_forever()
        nursery.cancel_scope.cancel()
    if answered:
        return 0
    # Most likely nothing listens there: a failure a script can see.
    _say(f"no call was answered: is an outbound app listening on {options.call_socket}?")
    return 1


def run_fake_switch(options: FakeSwitchOptions) -> int:
    try:
        return trio.run(run_until_signal, partial(serve_fake_switch, options))
    except Exception as exc:
        return report_user_error("fake-switch", exc)
