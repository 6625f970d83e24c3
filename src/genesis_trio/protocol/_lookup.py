"""Reading one header straight from an event's undecoded bytes.

Most programs look at a handful of an event's ~100 headers, and routing
needs only Event-Name, Event-Subclass, Unique-ID or Job-UUID. Finding one
header with a C-speed ``bytes.find`` costs far less than decoding them all,
so events arriving on a connection are decoded in full only on demand.
Whenever the quick path cannot be sure (an escaped JSON value, a header
written in an unusual form), it answers :data:`UNSURE` and the caller
decodes the whole event instead, so both paths always agree.
"""

from __future__ import annotations

from typing import Final

from ._codec import url_decode

__all__ = ["UNSURE", "lookup_json", "lookup_plain", "plain_needles", "plain_value_at"]


class _Unsure:
    __slots__ = ()


UNSURE: Final = _Unsure()


# Header name -> the bytes that find it (b"" when the quick path cannot be sure of that
# name). Names come from programs and the peer: the caches stop growing at a bound.
_NEEDLE_CACHE_LIMIT: Final = 4096
# plain: (the name and its colon at the start, the same after a line break), or ()
_plain_needles: dict[str, tuple[bytes, ...]] = {}
_json_needles: dict[str, bytes] = {}


def plain_needles(name: str) -> tuple[bytes, ...]:
    """``(b"Name:", b"\nName:")`` for ``name``, or ``()`` when the quick path cannot be sure."""
    needles = _plain_needles.get(name)
    return needles if needles is not None else _plain_needle(name)


def _plain_needle(name: str) -> tuple[bytes, ...]:
    key = name.encode("utf-8")
    needles: tuple[bytes, ...] = ()
    if b"\n" not in key and b":" not in key:
        needles = (key + b":", b"\n" + key + b":")
    if len(_plain_needles) < _NEEDLE_CACHE_LIMIT:
        _plain_needles[name] = needles
    return needles


def _json_needle(name: str) -> bytes:
    key = name.encode("utf-8")
    needle = b"" if b'"' in key or b"\\" in key else b'"' + key + b'":'
    if len(_json_needles) < _NEEDLE_CACHE_LIMIT:
        _json_needles[name] = needle
    return needle


def lookup_plain(raw: bytes, head_end: int, name: str) -> str | _Unsure | None:
    """The first value of ``name`` in a plain event's header block ``raw[:head_end]``."""
    needles = _plain_needles.get(name)
    if needles is None:
        needles = _plain_needle(name)
    if not needles:
        return UNSURE
    first, later = needles
    # One search for "Name:" at a line start; the colon ends the name, so "Name-X:"
    # never matches.
    if raw.startswith(first):
        start = len(first)
    else:
        found = raw.find(later, 0, head_end)
        if found < 0:
            return None
        start = found + len(later)
    return plain_value_at(raw, start, head_end)


def plain_value_at(raw: bytes, start: int, head_end: int) -> str | _Unsure:
    """The value after a ``Name:`` that ends at ``start``: FreeSWITCH writes ``Name:
    value`` up to the line's end (within ``raw[:head_end]``); anything else there (a
    bare ``Name:``, no space) is left to the full decode."""
    if not raw.startswith(b" ", start):  # (past the block: "\n" or nothing is there)
        return UNSURE
    start += 1
    end = raw.find(b"\n", start, head_end)
    if end < 0:
        end = head_end
    value = raw[start:end].decode("utf-8", "replace")
    return url_decode(value) if "%" in value else value


def lookup_json(raw: bytes, name: str) -> str | _Unsure | None:
    """The first value of ``name`` in a JSON event, if it is a plain JSON string."""
    needle = _json_needles.get(name)
    if needle is None:
        needle = _json_needle(name)
    if not needle:
        return UNSURE
    # In valid JSON an unescaped '"Name":' can only be a key.
    found = raw.find(needle)
    if found < 0:
        return None
    start = found + len(needle)
    if raw[start : start + 1] != b'"':
        return UNSURE  # an array (a repeated header), a number, or spacing we don't expect
    start += 1
    end = raw.find(b'"', start)
    if end < 0:
        return UNSURE
    value = raw[start:end]
    if b"\\" in value:
        return UNSURE
    return value.decode("utf-8", "replace")
