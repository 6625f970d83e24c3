"""The fake's built-in dialplan is the test bundle's ``conf/dialplan/default.xml``.

Read from the bundle itself (skipped where it is not installed), so the two cannot drift:
every extension the fake routes runs the bundle's applications with the bundle's data, and
the two it leaves out are the ones whose applications it does not have.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from genesis_trio.testing._dialplan import DEFAULT_OUTBOUND_PORT, Extension, bundle_extension
from real_switch import _bundle

# Applications the fake does not simulate: these extensions are not routed.
UNSIMULATED = {"9008": "conference", "9009": "valet_park"}


def bundle_dialplan() -> ET.Element:
    root = _bundle()
    if root is None:
        pytest.skip("the FreeSWITCH bundle is not installed")
    path = Path(root) / "conf-template" / "dialplan" / "default.xml"
    return ET.parse(path).getroot()


def static_extensions(document: ET.Element) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for extension in document.iter("extension"):
        conditions = extension.findall("condition")
        matched = re.fullmatch(r"\^(\d+)\$", conditions[0].get("expression", ""))
        if matched is None or len(conditions) != 1:
            continue
        found[matched.group(1)] = [
            (action.get("application", ""), action.get("data", ""))
            for action in conditions[0].findall("action")
        ]
    return found


def fake_extension(number: str, variables: dict[str, str] | None = None) -> Extension | None:
    return bundle_extension(number, variables or {}, DEFAULT_OUTBOUND_PORT)


def test_every_static_extension_agrees() -> None:
    extensions = static_extensions(bundle_dialplan())
    assert set(extensions) >= {"9001", "9002", "9003", "9004", "9005", "9006", "9007", "9010"}
    for number, actions in extensions.items():
        if number in UNSIMULATED:
            assert UNSIMULATED[number] in {name for name, _ in actions}
            assert fake_extension(number) is None, number
        else:
            assert fake_extension(number) == tuple(actions), number


def test_socket_extensions_agree() -> None:
    document = bundle_dialplan()
    datas = {action.get("data") for action in document.iter("action")}
    anti = {action.get("data") for action in document.iter("anti-action")}
    assert "127.0.0.1:${outbound_port} async full" in datas
    assert "127.0.0.1:$1 async full" in datas
    assert "127.0.0.1:$${default_outbound_port} async full" in anti
    assert fake_extension("9000", {"outbound_port": "40123"}) == (
        ("socket", "127.0.0.1:40123 async full"),
    )
    # The bundle's default_outbound_port is 8084 unless run-freeswitch --outbound-port.
    assert fake_extension("9000") == (("socket", "127.0.0.1:8084 async full"),)
    assert fake_extension("socket-40124") == (("socket", "127.0.0.1:40124 async full"),)


def test_unknown_numbers_are_not_routed() -> None:
    assert fake_extension("1234") is None
    assert fake_extension("socket-x") is None
