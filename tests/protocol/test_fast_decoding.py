"""The C-speed decoding paths must give exactly what the straightforward ones give."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import Headers, RemoteProtocolError, url_decode
from genesis_trio.protocol._events import parse_header_lines

# --- url_decode: the same as unquote(value, "utf-8", "replace") ---------------------------

_escape = st.builds(lambda byte: f"%{byte:02X}", st.integers(0, 255)) | st.builds(
    lambda byte: f"%{byte:02x}", st.integers(0, 255)
)
_odd = st.sampled_from(["%", "%4", "%zz", "%4g", "\\", "\\x", "\\x41", "%5C", "%25", "\ufffd", "é"])
_pieces = st.lists(st.text(max_size=6) | _escape | _odd, max_size=12).map("".join)


@settings(max_examples=500, deadline=None)
@given(_pieces)
@example("a%3Ab%20c")
@example("%C3%A9%E2%82%AC")
@example("%C3")  # an escaped UTF-8 sequence cut short
@example("%E2%82" + "¬")  # ... followed by a literal non-ASCII character
@example("é%A9")
@example("\\%41")
@example("100%")
@example("%%41")
@example("%ud800")
def test_url_decode_is_unquote(value: str) -> None:
    assert url_decode(value) == unquote(value, encoding="utf-8", errors="replace")


def test_url_decode_with_a_lone_surrogate_falls_back_to_unquote() -> None:
    value = "a\udc80%41"
    assert url_decode(value) == unquote(value, encoding="utf-8", errors="replace")


# --- parse_header_lines: the dict-of-splits path against the regex reading ------------------

_LINE = re.compile(r"^([^:\n]+): ?(.*)$", re.MULTILINE)


def _by_regex(text: str, decode: bool) -> list[tuple[str, str]]:
    """The reading parse_header_lines had before its fast path (and still falls back to)."""
    text = text.rstrip("\n")
    if not text:
        return []
    if decode and "%" in text:
        breaks = ("%0A", "%0a", "%0D", "%0d")
        if any(marker in text for marker in breaks):
            pairs = _LINE.findall(text)
            if len(pairs) != text.count("\n") + 1:
                raise RemoteProtocolError("malformed")
            return [(name, url_decode(value)) for name, value in pairs]
        text = url_decode(text)
    pairs = _LINE.findall(text)
    if len(pairs) != text.count("\n") + 1:
        raise RemoteProtocolError("malformed")
    return pairs


_names = st.sampled_from(["Event-Name", "Unique-ID", "A", "a:b", "", " x", "variable_x", "B"])
_values = st.sampled_from(["", "v", " v", "a: b", "%3A%20", "%0A", "x%", ":", "é%C3%A9"]) | st.text(
    alphabet=st.characters(blacklist_characters="\n"), max_size=5
)
_lines = st.lists(
    st.tuples(_names, st.sampled_from([": ", ":", ": "]), _values).map("".join)
    | st.sampled_from(["no colon here", ": orphan", "Name:"]),
    min_size=0,
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(_lines, st.booleans(), st.booleans())
@example(["Event-Name: X", "Event-Name: Y"], True, False)
@example(["a:b: c"], True, False)
@example(["Name:"], True, False)
@example(["Name: a%3A%20b", "Other: c"], True, True)
def test_header_lines_read_as_the_regex_reads_them(
    lines: list[str], decode: bool, trailing_newline: bool
) -> None:
    text = "\n".join(lines) + ("\n" if trailing_newline else "")
    try:
        expected = _by_regex(text, decode)
    except RemoteProtocolError:
        with pytest.raises(RemoteProtocolError):
            parse_header_lines(text, decode=decode)
        return
    parsed = parse_header_lines(text, decode=decode)
    assert list(parsed.multi_items()) == list(Headers(expected).multi_items())
    assert parsed == Headers(expected)
