"""``genesis-trio fake-switch`` as a process: calls into an outbound app, traffic, DTMF."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

from genesis_trio import Inbound, Outbound, Session
from outbound_serving import serving

CLI = [sys.executable, "-m", "genesis_trio.cli", "fake-switch", "--port", "0"]


async def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(90):
        return await trio.run_process(
            [*CLI, *args], capture_stdout=True, capture_stderr=True, check=False
        )


@asynccontextmanager
async def fake_switch(*args: str) -> AsyncIterator[tuple[str, int]]:
    """The CLI's fake switch, running until the block ends; yields where it listens."""
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            partial(trio.run_process, [*CLI, *args], stdout=subprocess.PIPE, check=False)
        )
        assert process.stdout is not None
        line = b""
        with trio.fail_after(60):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(1)
        # "fake FreeSWITCH listening on 127.0.0.1:PORT (Ctrl-C to stop)"
        host, _, port = line.split()[4].decode().rpartition(":")
        try:
            yield host, int(port)
        finally:
            process.terminate()


@pytest.mark.trio
async def test_calls_into_an_outbound_app_press_the_scripted_digits() -> None:
    pressed: list[str] = []

    async def handler(session: Session) -> None:
        await session.channel.answer()
        pressed.append(await session.channel.play_and_get_digits("menu.wav", max_digits=2))
        await session.channel.hangup()

    async with serving(Outbound(handler, port=0)) as (host, port):
        result = await run_cli(
            "--call-socket", f"{host}:{port}", "--calls", "2", "--rate", "20",
            "--dtmf", "9000=42", "--dtmf-after", "0",
        )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert pressed == ["42", "42"]
    out = result.stdout.decode()
    assert out.count("answered; ran: answer, play_and_get_digits") == 2
    assert "hangup cause NORMAL_CLEARING" in out


@pytest.mark.trio
async def test_no_app_listening_is_a_failure_a_script_sees() -> None:
    async def handler(session: Session) -> None:
        await session.channel.hangup()

    async with serving(Outbound(handler, port=0)) as address:
        host, port = address
    # The app is gone: its port refuses the connection.
    result = await run_cli("--call-socket", f"{host}:{port}")
    assert result.returncode == 1
    assert b"no call was answered" in result.stdout


@pytest.mark.trio
async def test_background_traffic_gives_a_consumer_events() -> None:
    async with (
        fake_switch("--traffic", "20", "--answer-delay", "0") as (host, port),
        Inbound(host, port, "ClueCon") as client,
        client.subscribe("CHANNEL_ANSWER") as events,
    ):
        with trio.fail_after(60):
            event = await events.receive()
    assert event.get("Caller-Destination-Number") in {"1000", "1001"}


@pytest.mark.trio
async def test_users_answer_and_the_test_switch_extensions_route() -> None:
    async with (
        fake_switch("--answer-delay", "0.1", "--dtmf", "user/1001=7", "--dtmf-after", "0") as (
            host,
            port,
        ),
        Inbound(host, port, "ClueCon") as client,
    ):
        with trio.fail_after(60):
            assert (await client.bgapi("originate user/1000 &park")).startswith("+OK")
            assert (await client.bgapi("originate loopback/9002/default &park")).startswith("+OK")
            async with client.subscribe("DTMF") as events:
                await client.bgapi("originate user/1001 &park")
                assert (await events.receive()).get("DTMF-Digit") == "7"


def test_bad_options_are_refused_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    from genesis_trio.cli import main

    for bad in (["--call-socket", "nowhere"], ["--dtmf", "9000=x"], ["--rate", "-1"]):
        with pytest.raises(SystemExit) as exited:
            main(["fake-switch", *bad])
        assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "expected HOST:PORT" in err
    assert "not DTMF digits" in err
    assert "must not be negative" in err
