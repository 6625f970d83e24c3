"""The README's quickstarts, unchanged, against the real switch (the port is the only change)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from docs.test_code_blocks import ROOT, free_port, outbound_app, python_blocks, with_ports
from real_switch import RealSwitch

BLOCKS = {block.directive.split()[0]: block for block in python_blocks(ROOT / "README.md")}
DEADLINE = 60

pytestmark = pytest.mark.freeswitch


def test_the_inbound_quickstart_prints_a_call(freeswitch: RealSwitch, tmp_path: Path) -> None:
    assert freeswitch.password == "ClueCon"  # the README's
    script = tmp_path / "quickstart.py"
    script.write_text(with_ports(BLOCKS["run"].code, freeswitch.port, free_port()))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=DEADLINE, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CHANNEL_ANSWER loopback/9010-" in result.stdout
    assert "CHANNEL_HANGUP_COMPLETE loopback/9010-" in result.stdout


async def call_with_a_digit(switch: RealSwitch, port: int) -> None:
    async with switch.inbound() as client, client.subscribe("CHANNEL_EXECUTE") as events:
        with trio.fail_after(DEADLINE):
            dial = f"{{outbound_port={port}}}loopback/9000/default"
            a_leg = (await client.bgapi(f"originate {dial} &park")).split()[1]
            async for event in events:
                if event.application == "play_and_get_digits":
                    await client.api(f"uuid_send_dtmf {a_leg} 1")
                    break


def test_the_outbound_quickstart_answers_a_call(freeswitch: RealSwitch, tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "outbound.py"
    script.write_text(with_ports(BLOCKS["outbound-app"].code, freeswitch.port, port))
    with outbound_app(script) as (out, errors):
        trio.run(call_with_a_digit, freeswitch, port)
        said = out.wait_for("caller pressed", DEADLINE)
    assert said, errors.text[-3000:]
    assert "caller pressed 1" in said.string, errors.text[-3000:]
