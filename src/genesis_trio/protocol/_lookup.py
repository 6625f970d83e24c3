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

__all__ = ["UNSURE", "lookup_json", "lookup_plain"]


class _Unsure:
    __slots__ = ()


UNSURE: Final = _Unsure()


def lookup_plain(raw: bytes, head_end: int, name: str) -> str | _Unsure | None:
    """The first value of ``name`` in a plain event's header block ``raw[:head_end]``."""
    key = name.encode("utf-8")
    if b"\n" in key or b":" in key:
        return UNSURE
    if raw.startswith(key + b": "):
        start = len(key) + 2
    else:
        found = raw.find(b"\n" + key + b": ", 0, head_end)
        if found < 0:
            # Absent, unless written as a bare "Name:" (no value): let the full decode judge.
            if raw.startswith(key + b":") or raw.find(b"\n" + key + b":", 0, head_end) >= 0:
                return UNSURE
            return None
        start = found + len(key) + 3
    end = raw.find(b"\n", start, head_end)
    if end < 0:
        end = head_end
    value = raw[start:end].decode("utf-8", "replace")
    return url_decode(value) if "%" in value else value


def lookup_json(raw: bytes, name: str) -> str | _Unsure | None:
    """The first value of ``name`` in a JSON event, if it is a plain JSON string."""
    key = name.encode("utf-8")
    if b'"' in key or b"\\" in key:
        return UNSURE
    # In valid JSON an unescaped '"Name":' can only be a key.
    found = raw.find(b'"' + key + b'":')
    if found < 0:
        return None
    start = found + len(key) + 3
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
