"""FreeSWITCH's URL encoding of plain-format header values."""

from __future__ import annotations

from urllib.parse import unquote

__all__ = ["url_decode", "url_encode"]

# The set FreeSWITCH's switch_url_encode escapes (matches every value in the
# recorded plain captures); control bytes and non-ASCII bytes are escaped too.
_UNSAFE = frozenset('\r\n "#%&+:;<=>?@[\\]^`{|}')
_ENCODE_TABLE = {
    byte: (f"%{byte:02X}" if (byte < 0x20 or byte >= 0x7F or chr(byte) in _UNSAFE) else chr(byte))
    for byte in range(256)
}


def url_encode(value: str) -> str:
    """Encode a header value as FreeSWITCH writes it in plain events."""
    table = _ENCODE_TABLE
    return "".join([table[byte] for byte in value.encode("utf-8")])


def url_decode(value: str) -> str:
    """Decode a plain-format header value (``%XX`` escapes, UTF-8; ``+`` stays ``+``)."""
    if "%" not in value:
        return value
    return unquote(value, encoding="utf-8", errors="replace")
