"""What a user sees of the public names: module paths in tracebacks, readable states."""

from __future__ import annotations

import importlib
import inspect
import traceback

import pytest

import genesis_trio
from genesis_trio import ChannelHangup, ChannelState

PACKAGES = [
    "genesis_trio",
    "genesis_trio.group",
    "genesis_trio.protocol",
    "genesis_trio.queue",
    "genesis_trio.testing",
    "genesis_trio.tracing",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_classes_and_functions_carry_a_public_module_path(package: str) -> None:
    module = importlib.import_module(package)
    private = {
        name: value.__module__
        for name in module.__all__
        if inspect.isclass(value := getattr(module, name)) or inspect.isfunction(value)
        if "._" in value.__module__ or value.__module__.startswith("_")
    }
    assert private == {}


def test_a_traceback_names_the_public_exception() -> None:
    try:
        raise ChannelHangup("gone")
    except ChannelHangup as exc:
        text = "".join(traceback.format_exception(exc))
    assert "genesis_trio.ChannelHangup: " in text
    assert "_exceptions" not in text


def test_top_level_wins_over_subpackage() -> None:
    assert genesis_trio.RingGroup.__module__ == "genesis_trio"
    assert genesis_trio.protocol.ESLParser.__module__ == "genesis_trio.protocol"


def test_channel_state_prints_its_freeswitch_name() -> None:
    assert str(ChannelState.EXECUTE) == "CS_EXECUTE"
    assert f"{ChannelState.PARK}" == "CS_PARK"
    assert f"{ChannelState.PARK:>8}" == " CS_PARK"
    # Still an int for comparisons and its repr still shows both.
    assert ChannelState.PARK > ChannelState.EXECUTE
    assert repr(ChannelState.PARK) == "<ChannelState.PARK: 6>"
