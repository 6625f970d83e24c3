"""What a user sees of the public names: module paths in tracebacks, readable states."""

from __future__ import annotations

import importlib
import inspect
import re
import traceback
from pathlib import Path

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


# --- every name the docs and examples show a user is importable --------------------------------

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "examples").rglob("*.py")),
]
# Internals the architecture and testing pages describe by name, each beside its private module.
DOCUMENTED_INTERNALS = {
    "ChannelCore",
    "ChannelHost",
    "ChannelStatus",
    "DirectReceiver",
    "SwitchFilters",
}
_IMPORT = re.compile(r"from (genesis_trio(?:\.\w+)*) import (?:\(([\w\s,]+)\)|([\w \t,]+))")
_DOTTED = re.compile(r"\bgenesis_trio(?:\.\w+)+")
_CODE = re.compile(r"`([^`\n]+)`")
# A CamelCase name of two words or more: not a header name (`Application-UUID`) or a word of a
# reply text (`Command not found`).
_CLASS_LIKE = re.compile(r"(?<![.\w-])([A-Z][a-z0-9]+[A-Z]\w*)(?![-\w])")


def _documents() -> list[tuple[str, str]]:
    return [(str(path.relative_to(ROOT)), path.read_text()) for path in DOCUMENTS]


def test_every_documented_import_works() -> None:
    failed: list[str] = []
    checked = 0
    for where, text in _documents():
        for module_name, grouped, plain in _IMPORT.findall(text):
            checked += 1
            module = importlib.import_module(module_name)
            failed += [
                f"{where}: from {module_name} import {name}"
                for name in (n.split()[0] for n in (grouped or plain).split(",") if n.strip())
                if not hasattr(module, name)
            ]
    assert checked > 40  # the pattern still finds the docs' imports
    assert failed == []


def test_every_documented_dotted_name_resolves() -> None:
    failed: list[str] = []
    for where, text in _documents():
        for dotted in set(_DOTTED.findall(text)):
            parts = dotted.split(".")
            if any(part.startswith("_") for part in parts):
                continue  # a private module, named as such (a traceback, the architecture)
            value: object = importlib.import_module("genesis_trio")
            for part in parts[1:]:
                if not hasattr(value, part):
                    failed.append(f"{where}: {dotted}")
                    break
                value = getattr(value, part)
    assert failed == []


def test_every_library_class_the_docs_name_is_public() -> None:
    """A class of ours named in the prose (say, a protocol to implement) can be imported."""
    source = ROOT / "src" / "genesis_trio"
    defined = {
        name
        for path in source.rglob("*.py")
        for name in re.findall(r"^\s*class (\w+)", path.read_text(), re.MULTILINE)
    }
    public = set()
    for package in PACKAGES:
        public |= set(importlib.import_module(package).__all__)
    unexported = {
        f"{where}: {name}"
        for where, text in _documents()
        for code in _CODE.findall(text)
        for name in _CLASS_LIKE.findall(code)
        if name in defined and name not in public and name not in DOCUMENTED_INTERNALS
    }
    assert unexported == set()
