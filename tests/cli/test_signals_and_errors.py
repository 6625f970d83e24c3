"""The CLI as an operator meets it: signals by PID, one-line errors, the environment."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest
import trio

from cli_process import OUTBOUND_LISTENING, cli_process, listening_address
from genesis_trio.testing import FakeFreeSWITCH
from waiting import wait_until

pytestmark = pytest.mark.trio

CONSUMER_APP = """\
from genesis_trio import Consumer, Event

app = Consumer()

@app.handle("HEARTBEAT")
async def heartbeat(event: Event) -> None:
    print("heartbeat", flush=True)
"""

OUTBOUND_APP = """\
import trio
from genesis_trio import Outbound, Session

async def handler(session: Session) -> None:
    await session.channel.answer()
    print("answered", session.uuid, flush=True)
    if session.context.get("variable_forever") == "yes":
        await trio.sleep_forever()
    await session.channel.wait("CHANNEL_HANGUP")

app = Outbound(handler)
"""


def write_app(tmp_path: Path, text: str, name: str = "app.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def no_traceback(output: str) -> None:
    assert "Traceback" not in output, output
    assert "ExceptionGroup" not in output, output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_fake_switch_stops_on_a_signal_without_traceback(signum: signal.Signals) -> None:
    async with cli_process("fake-switch", "--port", "0") as running:
        await running.wait_for_line("listening on", stream="stdout")
        running.signal(signum)
        assert await running.wait() == 0
    no_traceback(running.output)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_idle_outbound_stops_on_a_signal_with_status_0(
    tmp_path: Path, signum: signal.Signals
) -> None:
    app = write_app(tmp_path, OUTBOUND_APP)
    async with cli_process("--log-level", "info", "outbound", app, "--port", "0") as running:
        await running.wait_for_line(OUTBOUND_LISTENING)
        running.signal(signum)
        assert await running.wait() == 0
    no_traceback(running.output)


async def test_consumer_unsubscribes_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    app = write_app(tmp_path, CONSUMER_APP)
    async with FakeFreeSWITCH().running() as fake:
        env = {"ESL_HOST": fake.host, "ESL_PORT": str(fake.port)}
        async with cli_process("consumer", app, env=env) as running:
            with trio.fail_after(60):
                await fake.wait_for_command("event plain HEARTBEAT")
            running.signal(signal.SIGTERM)
            assert await running.wait() == 0
        assert "noevents" in fake.commands_received
    no_traceback(running.output)


async def test_outbound_drains_a_live_call_and_exits_0(tmp_path: Path) -> None:
    app = write_app(tmp_path, OUTBOUND_APP)
    async with (
        FakeFreeSWITCH().running() as fake,
        cli_process("--log-level", "info", "outbound", app, "--port", "0") as running,
    ):
        address = listening_address(await running.wait_for_line(OUTBOUND_LISTENING))
        channel = await fake.call_socket(address)
        await running.wait_for_line("answered", stream="stdout")
        running.signal(signal.SIGTERM)
        await running.wait_for_line("got SIGTERM")

        # Draining: new calls are refused, the live one carries on until the caller hangs up.
        # The listener closes a moment after that log line, in another process: probed.
        async def refused() -> bool:
            try:
                stream = await trio.open_tcp_stream(*address)
            except OSError:
                return True
            await stream.aclose()
            return False

        await wait_until(refused, within=60, what="new connections refused")
        assert not channel.ended
        channel.request_hangup()
        assert await running.wait() == 0
    no_traceback(running.output)


async def test_outbound_drain_timeout_cancels_the_call_and_says_exit(tmp_path: Path) -> None:
    app = write_app(tmp_path, OUTBOUND_APP)
    async with (
        FakeFreeSWITCH().running() as fake,
        cli_process(
            "--log-level", "info", "outbound", app, "--port", "0", "--drain-timeout", "0.2"
        ) as running,
    ):
        address = listening_address(await running.wait_for_line(OUTBOUND_LISTENING))
        channel = await fake.call_socket(address, variables={"forever": "yes"})
        await running.wait_for_line("answered", stream="stdout")
        running.signal(signal.SIGTERM)
        assert await running.wait() == 1
        with trio.fail_after(60):
            await channel.wait_ended()
    assert any(line == "exit" for line in fake.commands_received)
    assert "drain timeout" in running.output
    no_traceback(running.output)


async def test_wrong_password_is_one_line(tmp_path: Path) -> None:
    app = write_app(tmp_path, CONSUMER_APP)
    async with (
        FakeFreeSWITCH().running() as fake,
        cli_process(
            "consumer", app, "--port", str(fake.port), env={"ESL_PASSWORD": "wrong"}
        ) as running,
    ):
        assert await running.wait() == 1
    assert running.stderr_lines[-1:] == [running.stderr_lines[0]]
    assert "refused the credentials" in running.stderr_lines[0]
    assert "wrong" not in running.output
    no_traceback(running.output)


async def test_nobody_listening_is_one_line_and_the_flag_beats_the_environment(
    tmp_path: Path,
) -> None:
    app = write_app(tmp_path, CONSUMER_APP)
    async with FakeFreeSWITCH().running() as fake:
        free_port = fake.port
    # The fake is gone: nothing listens on its port. ESL_PORT points elsewhere, the flag wins.
    env = {"ESL_PORT": "1"}
    async with cli_process("consumer", app, "--port", str(free_port), env=env) as running:
        assert await running.wait() == 1
    assert len(running.stderr_lines) == 1, running.output
    assert f":{free_port}" in running.stderr_lines[0]
    no_traceback(running.output)


async def test_address_in_use_is_one_line(tmp_path: Path) -> None:
    app = write_app(tmp_path, OUTBOUND_APP)
    async with FakeFreeSWITCH().running() as fake:
        async with cli_process("outbound", app, "--port", str(fake.port)) as running:
            assert await running.wait() == 1
        async with cli_process("fake-switch", "--port", str(fake.port)) as fake_cli:
            assert await fake_cli.wait() == 1
    for process in (running, fake_cli):
        assert len(process.stderr_lines) == 1, process.output
        assert "in use" in process.stderr_lines[0]
        no_traceback(process.output)


async def test_a_bad_port_in_the_environment_is_refused() -> None:
    async with cli_process("consumer", "app.py", env={"ESL_PORT": "eighty"}) as running:
        assert await running.wait() == 2
    assert "not a port number: 'eighty'" in running.output
    no_traceback(running.output)


def _without_the_ops_extra(tmp_path: Path) -> dict[str, str]:
    """An environment where ``import hypercorn`` fails, as without genesis-trio[ops]."""
    blocked = tmp_path / "blocked" / "hypercorn"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text('raise ImportError("hidden by the test")\n')
    # ESL_OPS_PORT empty: no port chosen, so the default applies.
    return {"PYTHONPATH": str(blocked.parent), "ESL_OPS_PORT": ""}


async def test_an_app_without_the_ops_extra_runs_without_ops_endpoints(tmp_path: Path) -> None:
    app = write_app(tmp_path, OUTBOUND_APP)
    env = _without_the_ops_extra(tmp_path)
    async with cli_process(
        "--log-level", "info", "outbound", app, "--port", "0", env=env
    ) as running:
        await running.wait_for_line(OUTBOUND_LISTENING)
        running.signal(signal.SIGTERM)
        assert await running.wait() == 0
    assert "install genesis-trio[ops]" in running.output
    no_traceback(running.output)


async def test_an_ops_port_asked_for_without_the_extra_is_one_line(tmp_path: Path) -> None:
    app = write_app(tmp_path, OUTBOUND_APP)
    env = _without_the_ops_extra(tmp_path)
    async with cli_process(
        "outbound", app, "--port", "0", "--ops-port", "8123", env=env
    ) as running:
        assert await running.wait() != 0
    assert "genesis-trio[ops]" in running.output
    assert len(running.stderr_lines) == 1, running.output
