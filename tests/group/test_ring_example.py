"""examples/group_call.py runs as documented against the built-in fake switch."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import trio
import trio.testing

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "group_call.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("group_call_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arguments(**overrides: object) -> argparse.Namespace:
    defaults: dict[str, object] = {
        "host": None,
        "port": 8021,
        "password": "ClueCon",
        "caller": "user/1000",
        "group": "user/1001,user/1002,user/1003",
        "mode": "parallel",
        "timeout": 20.0,
        "max_talk": None,
    }
    return argparse.Namespace(**{**defaults, **overrides})


@pytest.mark.trio
@pytest.mark.parametrize("mode", ["parallel", "sequential", "balancing"])
async def test_the_caller_is_bridged_to_the_agent_who_answers(
    mode: str, autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    await load_example().main(arguments(mode=mode))
    output = capsys.readouterr().out
    assert "user/1002 answered" in output
    assert "bridged " in output
    assert "user/1002 hung up (NORMAL_CLEARING)" in output


@pytest.mark.trio
async def test_nobody_answers_in_time(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    await load_example().main(arguments(timeout=2.0))
    output = capsys.readouterr().out
    assert "nobody answered" in output
    assert "the caller's call ended: NORMAL_CLEARING" in output
