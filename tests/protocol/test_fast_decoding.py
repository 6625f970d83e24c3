"""The C-speed decoding paths must give exactly what the straightforward ones give."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import Headers, RemoteProtocolError, url_decode
from genesis_trio.protocol._events import decode_event_parts, parse_header_lines

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


# --- json: the one-parse decode against a pair-by-pair reading ------------------------------


class _Pairs(list[tuple[str, object]]):
    pass


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value))


def _plain(value: object) -> object:
    if isinstance(value, _Pairs):
        return {name: _plain(item) for name, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _json_by_pairs(data: bytes) -> tuple[list[tuple[str, str]], str | None]:
    """Every (key, value) of the object in order, as the decoder had always read them."""
    document = json.loads(data, object_pairs_hook=_Pairs)
    assert isinstance(document, _Pairs)
    body: str | None = None
    pairs: list[tuple[str, str]] = []
    for name, value in document:
        if name == "_body":
            body = None if value is None else _text(value)
        elif isinstance(value, list) and not isinstance(value, _Pairs):
            pairs.extend((name, _text(item)) for item in value)
        else:
            pairs.append((name, _text(value)))
    return pairs, body


def _json_source(value: object) -> str:
    """JSON text that may repeat a key (a dict could not)."""
    if isinstance(value, _Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{_json_source(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_source(item) for item in value) + "]"
    return json.dumps(value)


_keys = st.sampled_from(["Event-Name", "Unique-ID", "_body", "A", "é", 'q"uote', "x\\y"])
_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4)
_json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.lists(st.tuples(_keys, inner), max_size=3).map(_Pairs)
    ),
    max_leaves=8,
)
_documents = st.lists(st.tuples(_keys, st.text(max_size=4) | _json_values), max_size=8).map(_Pairs)


@settings(max_examples=400, deadline=None)
@given(_documents)
@example(_Pairs([("Event-Name", "A"), ("Event-Name", "B")]))
@example(_Pairs([("A", _Pairs([("k", 1), ("k", 2)]))]))
@example(_Pairs([("_body", None), ("A", "x")]))
@example(_Pairs([("_body", 3), ("A", ["x", "y"])]))
def test_json_decodes_as_the_pair_by_pair_reading(document: _Pairs) -> None:
    data = _json_source(document).encode("utf-8")
    pairs, body = _json_by_pairs(data)
    headers, decoded_body = decode_event_parts(data, "json")
    assert list(headers.multi_items()) == list(Headers(pairs).multi_items())
    assert decoded_body == body


@pytest.mark.parametrize("text", [b"[]", b"3", b'"x"', b"null", b"{", b'{"a": }'])
def test_json_that_is_not_an_object_is_refused(text: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_event_parts(text, "json")
