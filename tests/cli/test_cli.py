"""The genesis-trio command, run as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genesis_trio.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genesis_trio.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_prints_the_call_flow_and_its_trace() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "api status -> UP" in out
    assert "event CHANNEL_ANSWER" in out or "answered" in out
    assert "CHANNEL_HANGUP_COMPLETE" in out
    assert "trace:" in out
    assert "inbound_connect" in out
    assert "channel.create" in out
    assert "freeswitch.channel.answer" in out
    assert "ClueCon" not in out


@pytest.mark.parametrize("event_format", ["json", "xml"])
def test_demo_in_other_event_formats(event_format: str) -> None:
    result = run_cli("demo", "--format", event_format, "--no-trace")
    assert result.returncode == 0, result.stderr
    assert "CHANNEL_HANGUP_COMPLETE" in result.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert "genesis-trio" in capsys.readouterr().out


def test_consumer_with_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("consumer", str(tmp_path / "nope.py"))
    assert result.returncode == 2
    assert "no such file" in result.stderr


def test_consumer_file_without_an_app_is_a_clear_error(tmp_path: Path) -> None:
    app_file = tmp_path / "empty_app.py"
    app_file.write_text("x = 1\n")
    result = run_cli("consumer", str(app_file))
    assert result.returncode == 2
    assert "found 0 Consumer objects" in result.stderr
