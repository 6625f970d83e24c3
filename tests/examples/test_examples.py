"""Every example runs as-is against the built-in fake switch, as a teacher would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs_against_the_fake_switch(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=example.parent,  # as `cd examples && python x.py`: no module there may shadow another
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "an example should show what it did"
    assert "Traceback" not in result.stderr


HELPED = [*EXAMPLES, *sorted((EXAMPLES[0].parent / "tutorial").glob("step*.py"))]


@pytest.mark.parametrize("example", HELPED, ids=[path.stem for path in HELPED])
def test_example_help_keeps_its_layout_and_names_the_switch(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example), "--help"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=example.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    # The docstring's own first line stays a line (not run together with the rest).
    first_line = (example.read_text().split('"""')[1]).splitlines()[0].strip()
    assert first_line in [line.strip() for line in lines]
    # Everything that talks to a switch says which one; outbound servers say where they listen.
    assert {"--host", "--port", "--password"} <= set(result.stdout.split()) or (
        "--listen-port" in result.stdout
    )
