"""The dialplan of the FreeSWITCH test bundle (``shared/freeswitch/README.md``).

A fake with ``dialplan=True`` (the default) routes ``loopback/<extension>/default`` as the
bundle's ``conf/dialplan/default.xml`` does: the ``-b`` leg of the loopback pair runs the
extension's applications. Extensions whose applications the fake does not have
(``9008`` conference, ``9009`` valet parking) are not routed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["DEFAULT_OUTBOUND_PORT", "bundle_extension"]

DEFAULT_OUTBOUND_PORT = 8084

Extension = tuple[tuple[str, str], ...]

_STATIC: dict[str, Extension] = {
    "9001": (
        ("answer", ""),
        ("playback", "tone_stream://%(500,100,440);loops=3"),
        ("park", ""),
    ),
    "9002": (("answer", ""), ("park", "")),
    "9003": (
        ("ring_ready", ""),
        ("sleep", "200"),
        ("pre_answer", ""),
        ("playback", "tone_stream://%(200,0,440);loops=1"),
        ("answer", ""),
        ("playback", "tone_stream://%(300,100,440);loops=2"),
        ("park", ""),
    ),
    "9004": (("ring_ready", ""), ("sleep", "600000")),
    "9005": (("hangup", "USER_BUSY"),),
    "9006": (("answer", ""), ("echo", "")),
    "9007": (("answer", ""), ("park", "")),
    "9010": (
        ("answer", ""),
        ("playback", "tone_stream://%(300,0,440);loops=1"),
        ("hangup", "NORMAL_CLEARING"),
    ),
}

_SOCKET_N = re.compile(r"socket-(\d+)")


def bundle_extension(
    number: str, variables: Mapping[str, str], default_outbound_port: int = DEFAULT_OUTBOUND_PORT
) -> Extension | None:
    """The applications extension ``number`` of context ``default`` runs, or None.

    ``variables`` are the call's (the originate's ``{...}``): ``9000`` connects an
    outbound socket to ``127.0.0.1:${outbound_port}``.
    """
    if number == "9000":
        port = variables.get("outbound_port", "")
        if not port.isdigit():
            port = str(default_outbound_port)
        return (("socket", f"127.0.0.1:{port} async full"),)
    matched = _SOCKET_N.fullmatch(number)
    if matched is not None:
        return (("socket", f"127.0.0.1:{matched.group(1)} async full"),)
    return _STATIC.get(number)
