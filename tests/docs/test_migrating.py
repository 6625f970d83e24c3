"""Every behaviour change docs/migrating-from-genesis.md lists, checked against the library."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from genesis_trio import (
    Channel,
    ChannelState,
    CommandError,
    ConnectionLost,
    Event,
    Inbound,
    OperationTimeout,
    OriginateError,
    Outbound,
    Session,
)
from genesis_trio.testing import FakeChannel, FakeFreeSWITCH
from outbound_serving import serving

pytestmark = pytest.mark.trio


async def in_a_call(
    fake: FakeFreeSWITCH, body: Callable[[Session], Awaitable[None]]
) -> FakeChannel:
    async with serving(Outbound(body, port=0)) as address:
        call = await fake.call_socket(address)
        await call.wait_ended()
    return call


async def test_outbound_takes_handler_host_port_and_defaults_to_8084() -> None:
    async def handler(session: Session) -> None:
        pass

    app = Outbound(handler, "127.0.0.1", 5000)
    assert (app.host, app.port) == ("127.0.0.1", 5000)
    assert inspect.signature(Outbound).parameters["port"].default == 8084
    assert inspect.signature(Outbound).parameters["myevents"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(TypeError):
        Outbound(handler, events=True)  # type: ignore[call-arg]


async def test_answer_is_on_the_channel_and_pagd_takes_seconds_by_keyword(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    seen: dict[str, object] = {}

    async def handler(session: Session) -> None:
        seen["session.answer"] = hasattr(session, "answer")
        # A call in CS_EXECUTE is not answered: waiting for the state returns at once.
        await session.channel.wait(ChannelState.EXECUTE, timeout=5)
        seen["answered in EXECUTE"] = session.channel.answered
        await session.channel.answer()
        with pytest.raises(TypeError):
            await session.channel.play_and_get_digits(3, 5000, "#", "menu.wav")  # type: ignore[call-arg, arg-type]
        await session.channel.play_and_get_digits("menu.wav", tries=1, input_timeout=5)
        await session.channel.hangup()

    call = await in_a_call(fake, handler)
    assert seen == {"session.answer": False, "answered in EXECUTE": False}
    pagd = next(run for run in call.applications if run.name == "play_and_get_digits")
    assert pagd.data.split()[3] == "5000"  # 5 s, sent to FreeSWITCH as milliseconds


async def test_star_is_no_event_name_and_all_is(fake: FakeFreeSWITCH) -> None:
    star: list[Event] = []
    got_one = trio.Event()

    async def every(event: Event) -> None:
        got_one.set()

    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        with pytest.raises(CommandError, match="no keywords"):
            await client.events("*")
        client.on("*", star.append)
        client.on("ALL", every)
        await client.events("ALL")
        await client.api("status")  # fires an API event
        with trio.fail_after(30):
            await got_one.wait()
    assert not star


async def test_err_raises_command_error_unless_check_is_false(fake: FakeFreeSWITCH) -> None:
    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        with pytest.raises(CommandError):
            await client.api("no_such_command")
        assert (await client.api("no_such_command", check=False)).startswith("-ERR")
    with pytest.raises(ConnectionLost):
        await client.api("status")  # Genesis: UnconnectedError


async def test_a_busy_originate_raises_with_the_cause(fake: FakeFreeSWITCH) -> None:
    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        with pytest.raises(OriginateError) as failed:
            await Channel.create(client, "loopback/9005/default", timeout=30)
    assert failed.value.cause == "USER_BUSY"


async def test_wait_has_no_default_timeout_and_raises_a_builtin_timeout_error(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    assert inspect.signature(Channel.wait).parameters["timeout"].default is None
    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        channel = await Channel.create(client, "loopback/9002/default", timeout=30)
        with pytest.raises(TimeoutError) as timed_out:
            await channel.wait("DTMF", timeout=30)
        assert isinstance(timed_out.value, OperationTimeout)
        await channel.hangup()
