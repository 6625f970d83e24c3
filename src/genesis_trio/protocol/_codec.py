"""FreeSWITCH's URL encoding of plain-format header values."""

from __future__ import annotations

import codecs
import re
from urllib.parse import unquote

__all__ = ["url_decode", "url_encode"]

# The set FreeSWITCH's switch_url_encode escapes (matches every value in the
# recorded plain captures); control bytes and non-ASCII bytes are escaped too.
_UNSAFE = frozenset('\r\n "#%&+:;<=>?@[\\]^`{|}')
_ENCODE_TABLE = {
    byte: (f"%{byte:02X}" if (byte < 0x20 or byte >= 0x7F or chr(byte) in _UNSAFE) else chr(byte))
    for byte in range(256)
}


# switch_url_encode (switch_utils.c, double_encode off) leaves a '%' that is followed by two
# upper-case hex digits as it is, taking it for an escape already made. So a value holding
# "%41" reaches a plain or xml listener as "A": FreeSWITCH's encoding is lossy there, and the
# fake must be lossy the same way.
_KEPT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def url_encode(value: str) -> str:
    """Encode a header value exactly as FreeSWITCH writes it in plain and xml events.

    Like FreeSWITCH, an existing ``%XX`` (upper-case hex) is kept as it is, so such a value
    does not survive the round trip: ``url_decode(url_encode("%41")) == "A"``.
    """
    table = _ENCODE_TABLE
    if "%" not in value:
        return "".join([table[byte] for byte in value.encode("utf-8")])
    pieces: list[str] = []
    start = 0
    for kept in _KEPT_ESCAPE.finditer(value):
        pieces.extend(table[byte] for byte in value[start : kept.start()].encode("utf-8"))
        pieces.append(kept.group())
        start = kept.end()
    pieces.extend(table[byte] for byte in value[start:].encode("utf-8"))
    return "".join(pieces)


def url_decode(value: str) -> str:
    """Decode a plain-format header value (``%XX`` escapes, UTF-8; ``+`` stays ``+``).

    The same result as ``urllib.parse.unquote(value, "utf-8", "replace")``, in C: every
    ``%XX`` becomes a ``\\xXX`` escape for the bytes-escape decoder (backslashes doubled
    first). A ``%`` without two hex digits after it makes that decoder refuse the text, and
    ``unquote`` (which leaves such a ``%`` as it is) does the work instead.
    """
    if "%" not in value:
        return value
    try:
        raw = _escape_decode(value.encode("utf-8").replace(b"\\", b"\\\\").replace(b"%", b"\\x"))
    except ValueError:
        return unquote(value, encoding="utf-8", errors="replace")
    return raw[0].decode("utf-8", "replace")


# CPython's bytes-escape decoder (the codec behind "\x41" in bytes literals; pickle uses it).
_escape_decode = codecs.escape_decode
