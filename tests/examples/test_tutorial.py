"""The tutorial's steps (examples/tutorial/) run against `genesis-trio fake-switch`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tutorial_runs import (
    CLIENT_STEPS,
    OUTBOUND_STEPS,
    TIMEOUT,
    TUTORIAL,
    run_client_step,
    run_outbound_step,
)

FAKE_SWITCH = [sys.executable, "-m", "genesis_trio.cli", "fake-switch", "--port", "0"]


@pytest.fixture(scope="module")
def fake_switch_port() -> Iterator[int]:
    process = subprocess.Popen(FAKE_SWITCH, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline().split()[4].rpartition(":")[2])
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT)


@pytest.mark.parametrize("step", CLIENT_STEPS)
def test_client_step(step: str, fake_switch_port: int) -> None:
    out = run_client_step(step, "127.0.0.1", fake_switch_port, "ClueCon")
    assert out.strip()


@pytest.mark.parametrize("step", sorted(OUTBOUND_STEPS))
def test_outbound_step(step: str) -> None:
    def place_call(port: int, digits: str) -> None:
        dtmf = ["--dtmf", f"9000={digits}", "--dtmf-after", "0.5"] if digits else []
        result = subprocess.run(
            [*FAKE_SWITCH, "--call-socket", f"127.0.0.1:{port}", *dtmf],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    run_outbound_step(step, place_call)


def test_the_ivr_test_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(TUTORIAL / "test_step6_ivr.py")],
        capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=TUTORIAL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "4 passed" in result.stdout
