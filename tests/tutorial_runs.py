"""Running the tutorial's steps as a reader would: shared by the fake and real-switch tests."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from waiting import output_lines

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial"
CLIENT_STEPS = ["step1_connect", "step2_originate"]
OUTBOUND_STEPS = {  # step -> the digits the caller presses, what it must print
    "step3_outbound": ("", "done"),
    "step4_digits": ("2", "chose 2"),
    "step5_timeouts": ("", "wait.result=timeout"),
}
TIMEOUT = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_client_step(step: str, host: str, port: int, password: str) -> str:
    result = subprocess.run(
        [sys.executable, str(TUTORIAL / f"{step}.py"),
         "--host", host, "--port", str(port), "--password", password],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def run_outbound_step(step: str, place_call: Callable[[int, str], None]) -> str:
    """Start the step's server for one call, let ``place_call(port, digits)`` call it."""
    digits, expected = OUTBOUND_STEPS[step]
    port = free_port()
    app = subprocess.Popen(
        [sys.executable, str(TUTORIAL / f"{step}.py"), "--listen-port", str(port), "--calls", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines, error_lines = output_lines(app)
    try:
        assert lines.wait_for("outbound server on", TIMEOUT), error_lines.text[-3000:]
        place_call(port, digits)
        app.wait(TIMEOUT)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(TIMEOUT)
        out, errors = lines.join(TIMEOUT), error_lines.join(TIMEOUT)
    assert app.returncode == 0, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
    assert expected in out, out
    return out
