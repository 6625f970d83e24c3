"""Issue 9's values and checks, shared by the fake-switch and real-switch injection tests.

Each check puts a value through a public entry point and reads it back with
``uuid_getvar``: the value must come back exactly, or our code must have refused it
with LocalProtocolError before writing anything. A :class:`Tally` counts what happened.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from genesis_trio import Channel, Inbound, LocalProtocolError

__all__ = [
    "DIAL_PATH",
    "HOSTILE_TEXT",
    "ISSUE_VALUES",
    "MULTI_LEG_PATHS",
    "Tally",
    "check_originate",
    "check_setvar",
]

DIAL_PATH = "loopback/9002/default"

# Unicode, quotes, commas, braces, brackets, backslashes, |, ^, %, $, spaces at both ends,
# and the prefixes FreeSWITCH gives a meaning to.
_SPECIALS = [*" ,'\"{}[]<>\\|^%$=:_&()!;/+-@#\t", "\\s", "\\n", "${", ":_:", "^^:"]
HOSTILE_TEXT = st.one_of(
    st.lists(
        st.one_of(
            st.sampled_from(_SPECIALS),
            st.characters(codec="utf-8", exclude_characters="\x00"),
        ),
        max_size=24,
    ).map("".join),
    st.builds(
        lambda left, middle, right: left + middle + right,
        st.sampled_from([" ", "  ", "'", "\\", "{", "ARRAY::", "^^,", "+", ""]),
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
        st.sampled_from([" ", "  ", "'", "\\", "}", ",", "\t", "\x0b", " \x0b", ""]),
    ),
)

#: The values issue 9 lists: (value, stored exactly by originate?, by set_variable?).
ISSUE_VALUES: list[tuple[str, bool, bool]] = [
    ("Smith, John", True, True),
    ("Mallory,origination_caller_id_number=911", True, True),
    ("a}b", False, True),
    ("x{y", False, True),
    ("back\\slash", True, True),
    ("  spaces at both ends  ", True, True),
    ("x}loopback/9002/default", False, True),
    ("'quoted'", True, True),
]

#: Dial paths that dialled extra legs or carried their own variable block.
MULTI_LEG_PATHS = [
    "loopback/9002/default,loopback/9002/default",
    "loopback/9002/default|loopback/9002/default",
    "loopback/9002/default:_:loopback/9002/default",
    "{x=1}loopback/9002/default",
    "[x=1]loopback/9002/default",
    "<x=1>loopback/9002/default",
    "loopback/9002/default &echo",
]


@dataclass
class Tally:
    """What happened to the values tried: stored exactly, refused by us, or altered."""

    tried: int = 0
    exact: int = 0
    refused: int = 0
    altered: list[tuple[str, str | None]] = field(default_factory=list)

    def record(self, value: str, stored: str | None, refused: bool) -> None:
        self.tried += 1
        if refused:
            self.refused += 1
        elif stored == value:
            self.exact += 1
        else:
            self.altered.append((value, stored))

    def report(self, label: str) -> str:
        line = (
            f"{label}: tried {self.tried}, exact {self.exact}, refused {self.refused}, "
            f"altered {len(self.altered)}"
        )
        target = os.environ.get("GENESIS_TRIO_INJECTION_COUNTS")
        if target:
            with Path(target).open("a") as file:
                file.write(json.dumps({"label": label, **asdict(self)}) + "\n")
        return line


async def check_originate(
    client: Inbound, value: str, tally: Tally, *, name: str = "x"
) -> Channel | None:
    """Originate with ``{name: value}``; record what ``uuid_getvar`` reads back.

    Returns the channel (the caller hangs it up) or None when refused.
    """
    try:
        channel = await Channel.create(client, DIAL_PATH, {name: value}, timeout=30)
    except LocalProtocolError:
        tally.record(value, None, refused=True)
        return None
    stored = await client.api(f"uuid_getvar {channel.uuid} {name}")
    tally.record(value, stored, refused=False)
    return channel


async def check_setvar(channel: Channel, value: str, tally: Tally, *, name: str = "y") -> None:
    try:
        await channel.set_variable(name, value)
    except LocalProtocolError:
        tally.record(value, None, refused=True)
        return
    stored = await channel.client.api(f"uuid_getvar {channel.uuid} {name}")
    tally.record(value, stored, refused=False)
