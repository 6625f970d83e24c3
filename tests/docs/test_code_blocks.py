"""Every Python block in the README and docs/ runs, or says on purpose that it does not.

A block is run as a script against ``genesis-trio fake-switch`` (the literal
port ``8021`` becomes the fake's, ``8084`` a free one), the way a reader would
run it. An HTML comment right before the fence says otherwise:

- ``<!-- docs: fragment -->``: a piece of a larger program, not run;
- ``<!-- docs: module NAME -->``: saved as ``NAME.py`` for the page's later blocks to import;
- ``<!-- docs: pytest -->``: a test module, run with pytest;
- ``<!-- docs: outbound-app -->``: an Outbound server; the fake switch calls it once
  (``fake-switch --call-socket ... --dtmf 9000=1``) and the call must be answered;
- ``<!-- docs: until TEXT -->``: runs until it printed TEXT (a Consumer), then is stopped.

Blocks that include a file (``--8<-- "examples/..."``) are that file, run by tests/examples.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from waiting import OutputLines, output_lines, terminate

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FAKE_SWITCH = [sys.executable, "-m", "genesis_trio.cli", "fake-switch"]
TIMEOUT = 90

_FENCE = re.compile(
    r"(?:<!--\s*docs:\s*(?P<directive>[^>]*?)\s*-->\s*\n)?^```(?P<lang>\w*)[^\n]*\n(?P<code>.*?)^```\s*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    directive: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def python_blocks(page: Path) -> list[Block]:
    text = page.read_text()
    return [
        Block(
            page,
            text.count("\n", 0, match.start("code")),
            match["directive"] or "run",
            match["code"],
        )
        for match in _FENCE.finditer(text)
        if match["lang"] in {"python", "py"}
    ]


def runs(block: Block) -> bool:
    """Fragments are marked on purpose; included files are tested where they live."""
    return block.directive != "fragment" and not block.code.lstrip().startswith("--8<--")


BLOCKS = [block for page in PAGES for block in python_blocks(page) if runs(block)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_ports(code: str, esl_port: int, app_port: int) -> str:
    return re.sub(r"\b8084\b", str(app_port), re.sub(r"\b8021\b", str(esl_port), code))


@pytest.fixture(scope="module")
def fake_switch_port() -> Iterator[int]:
    """One fake switch for the module's blocks: users answer at once, some traffic flows."""
    process = subprocess.Popen(
        [*FAKE_SWITCH, "--port", "0", "--answer-delay", "0.2", "--traffic", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "fake FreeSWITCH listening on HOST:PORT ..."
        yield int(line.split()[4].rpartition(":")[2])
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT)


def run_script(path: Path, *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=cwd,
    )


def run_until(path: Path, expected: str, *, cwd: Path) -> str:
    process = subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=cwd,
    )  # fmt: skip
    out, errors = output_lines(process)
    try:
        found = out.wait_for(re.escape(expected), TIMEOUT)
    finally:
        terminate(process, TIMEOUT)
    assert found, f"{out.join(TIMEOUT)}\n{errors.join(TIMEOUT)[-3000:]}"
    return out.join(TIMEOUT)


# The block runs unchanged, as ``__main__`` from its own directory; the launcher only turns
# on the library's INFO log, whose "outbound server listening on" line says it takes calls.
_WITH_LIBRARY_LOG = """\
import logging, os, runpy, sys
log = logging.getLogger("genesis_trio")
log.addHandler(logging.StreamHandler(sys.stderr))
log.setLevel(logging.INFO)
path = sys.argv.pop(1)
sys.path[0] = os.path.dirname(os.path.abspath(path))
runpy.run_path(path, run_name="__main__")
"""
OUTBOUND_LISTENING = r"outbound server listening on \S+:(\d+)"


@contextmanager
def outbound_app(path: Path, *, cwd: Path | None = None) -> Iterator[tuple[OutputLines, ...]]:
    """Run an Outbound app script until the block ends; yields once it listens.

    Yields its (stdout, stderr) lines; its port comes from the script itself.
    """
    app = subprocess.Popen(
        [sys.executable, "-c", _WITH_LIBRARY_LOG, str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )  # fmt: skip
    out, errors = output_lines(app)
    try:
        listening = errors.wait_for(OUTBOUND_LISTENING, TIMEOUT)
        assert listening, f"the outbound app never listened:\n{errors.text[-3000:]}"
        yield out, errors
    finally:
        terminate(app, TIMEOUT)
        out.join(TIMEOUT)
        errors.join(TIMEOUT)


def serve_and_call(path: Path, app_port: int, *, cwd: Path) -> str:
    with outbound_app(path, cwd=cwd) as (out, errors):
        call = subprocess.run(
            [*FAKE_SWITCH, "--port", "0", "--call-socket", f"127.0.0.1:{app_port}",
             "--dtmf", "9000=1", "--dtmf-after", "0.5"],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
    assert call.returncode == 0, f"{call.stdout}\n{errors.text[-3000:]}"
    assert "Traceback" not in errors.text, errors.text[-3000:]
    return call.stdout + out.text


@pytest.fixture(scope="module")
def page_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    return {page: tmp_path_factory.mktemp(page.stem) for page in PAGES}


def test_the_pages_have_blocks_that_run() -> None:
    # A broken fence pattern would silently run nothing.
    assert len(BLOCKS) >= 8
    assert {block.page.name for block in BLOCKS} >= {"README.md", "testing.md", "channel.md"}


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block(block: Block, fake_switch_port: int, page_dirs: dict[Path, Path]) -> None:
    directive, _, argument = block.directive.partition(" ")
    workdir = page_dirs[block.page]
    app_port = free_port()
    code = with_ports(block.code, fake_switch_port, app_port)
    if directive == "module":
        path = workdir / f"{argument}.py"
        path.write_text(code)
        # A module must at least import.
        result = subprocess.run(
            [sys.executable, "-c", f"import {argument}"],
            capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=workdir,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        return
    path = workdir / f"block_{block.line}.py"
    if directive == "pytest":
        path = workdir / f"test_block_{block.line}.py"
        path.write_text(code)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "--rootdir", str(workdir), str(path)],
            capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=workdir,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return
    path.write_text(code)
    if directive == "outbound-app":
        serve_and_call(path, app_port, cwd=workdir)
    elif directive == "until":
        run_until(path, argument.strip("\"'"), cwd=workdir)
    else:
        assert directive == "run", f"unknown directive {block.directive!r}"
        result = run_script(path, cwd=workdir)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip(), "a block that runs should show what it did"
