"""``--log-format json|text``: one line per record, naming the call and the current span."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from cli_process import OUTBOUND_LISTENING, cli_process, listening_address
from genesis_trio.testing import FakeFreeSWITCH

pytestmark = pytest.mark.trio

APP = """\
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from genesis_trio import Outbound, Session

trace.set_tracer_provider(TracerProvider())
log = logging.getLogger("myapp")

async def handler(session: Session) -> None:
    log.warning("handling the call")
    await session.channel.hangup()

app = Outbound(handler)
"""


async def run_one_call(tmp_path: Path, *options: str) -> tuple[list[str], str]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    async with (
        FakeFreeSWITCH().running() as fake,
        cli_process(*options, "--log-level", "info", "outbound", str(app), "--port", "0") as cli,
    ):
        address = listening_address(await cli.wait_for_line(OUTBOUND_LISTENING))
        channel = await fake.call_socket(address)
        await cli.wait_for_line("handling the call")
        cli.signal(signal.SIGTERM)
        assert await cli.wait() == 0
    return [line for line in cli.stderr_lines if line], channel.uuid


async def test_json_lines_carry_the_call_uuid_and_the_span(tmp_path: Path) -> None:
    lines, uuid = await run_one_call(tmp_path, "--log-format", "json")
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    (call,) = [r for r in records if r["message"] == "handling the call"]
    assert call["level"] == "WARNING"
    assert call["logger"] == "myapp"
    assert call["call_uuid"] == uuid
    assert len(call["trace_id"]) == 32
    assert int(call["trace_id"], 16) != 0
    assert len(call["span_id"]) == 16
    (listening,) = [r for r in records if "listening on" in r["message"]]
    assert listening["call_uuid"] is None


async def test_text_lines_show_the_call_uuid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines, uuid = await run_one_call(tmp_path)
    (call,) = [line for line in lines if "handling the call" in line]
    assert f"myapp [{uuid}]: handling the call" in call


async def test_json_format_from_the_environment(tmp_path: Path) -> None:
    async with cli_process(
        "fake-switch", "--port", "0", env={"ESL_LOG_FORMAT": "json", "ESL_LOG_LEVEL": "INFO"}
    ) as cli:
        await cli.wait_for_line("listening on", stream="stdout")
        cli.signal(signal.SIGINT)
        assert await cli.wait() == 0
    (stopping,) = [json.loads(line) for line in cli.stderr_lines if "SIGINT" in line]
    assert stopping["logger"] == "genesis_trio.cli"
