"""Decoding and encoding the three event body formats (plain, json, xml).

The codecs work on an event's parts (headers and body); the :class:`Event`
type builds on them (``_messages``), never the other way round.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from operator import methodcaller
from typing import Literal
from xml.parsers import expat
from xml.sax.saxutils import escape as xml_escape

from .._exceptions import RemoteProtocolError
from ._codec import url_decode, url_encode
from ._headers import Headers, header_int

__all__ = ["EventFormat", "EventParts", "decode_event_parts", "encode_event_parts"]

EventFormat = Literal["plain", "json", "xml"]
#: An event as its codecs see it: headers and body (None when it has none).
EventParts = tuple[Headers, str | None]


def _collect(pairs: Iterable[tuple[str, str]]) -> Headers:
    first: dict[str, str] = {}
    extra: dict[str, list[str]] | None = None
    for name, value in pairs:
        if name in first:
            if extra is None:
                extra = {}
            extra.setdefault(name, []).append(value)
        else:
            first[name] = value
    return Headers._adopt(first, extra)


_HEADER_LINE = re.compile(r"^([^:\n]+): ?(.*)$", re.MULTILINE)
_ENCODED_LINE_BREAKS = ("%0A", "%0a", "%0D", "%0d")


def parse_header_lines(text: str, *, decode: bool) -> Headers:
    """Parse ``Name: value`` lines; ``decode`` URL-decodes the values.

    The common case runs in C: one URL-decode of the whole block when no value
    hides an encoded line break, one split into lines, one ``split(": ", 1)``
    per line through ``map`` and one dict build. Anything unusual (a repeated
    header, a line without ``": "``, a name holding a colon) goes through the
    regex below, which also says which line is malformed.
    """
    text = text.rstrip("\n")
    if not text:
        return Headers._adopt({}, None)
    per_value_decode = False
    if decode and "%" in text:
        if "%0" in text and any(marker in text for marker in _ENCODED_LINE_BREAKS):
            per_value_decode = True
        else:
            text = url_decode(text)
    if not per_value_decode:
        lines = text.split("\n")
        try:
            first = dict(map(_split_line, lines))
        except ValueError:  # a line without ": " (malformed, or "Name:" with no value)
            pass
        else:
            # Equal to the regex's reading unless a name is empty or holds a colon, or a
            # header repeats (the dict kept only its last value).
            if len(first) == len(lines) and "" not in first and ":" not in "".join(first):
                return Headers._adopt(first, None)
    pairs = _HEADER_LINE.findall(text)
    if len(pairs) != text.count("\n") + 1:
        _raise_on_malformed_line(text)
    first = dict(pairs)
    if len(first) == len(pairs) and not per_value_decode:
        return Headers._adopt(first, None)
    first = {}
    extra: dict[str, list[str]] | None = None
    for name, value in pairs:
        if per_value_decode and "%" in value:
            value = url_decode(value)
        if name in first:
            if extra is None:
                extra = {}
            extra.setdefault(name, []).append(value)
        else:
            first[name] = value
    return Headers._adopt(first, extra)


_split_line = methodcaller("split", ": ", 1)


def _raise_on_malformed_line(text: str) -> None:
    for line in text.split("\n"):
        if not _HEADER_LINE.fullmatch(line):
            raise RemoteProtocolError(f"malformed header line: {line[:80]!r}")
    raise RemoteProtocolError("malformed header block")


def _content_length(headers: Headers) -> int | None:
    values = headers.get_all("Content-Length")
    if not values:
        return None
    # FreeSWITCH appends its own Content-Length after any the sender set: the last wins.
    text = values[-1]
    length = header_int(text)
    if length is None:
        raise RemoteProtocolError(f"malformed Content-Length in event: {text[:20]!r}")
    return length


def _decode_plain(data: bytes) -> EventParts:
    split = data.find(b"\n\n")
    head, rest = (data, b"") if split < 0 else (data[:split], data[split + 2 :])
    headers = parse_header_lines(head.decode("utf-8", "replace"), decode=True)
    length = _content_length(headers)
    if length is None:
        return headers, None
    if length > len(rest):
        raise RemoteProtocolError("plain event body shorter than its Content-Length")
    return headers, rest[:length].decode("utf-8", "replace")


class _JSONObject(list[tuple[str, object]]):
    """A JSON object as its (key, value) pairs: FreeSWITCH writes a header
    that appears twice as two equal keys, which a dict would collapse."""


def _decode_json(data: bytes) -> EventParts:
    # One parse, in C for the common case: an object of string values with no repeated
    # key (what FreeSWITCH sends for an event whose headers all appear once) becomes the
    # header dict itself. A repeated key keeps every pair (_JSONObject); arrays (a
    # header with many values) and other values go through the loop below.
    try:
        document = json.loads(data, object_pairs_hook=_json_object)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"invalid JSON event: {exc}") from None
    body: str | None = None
    if type(document) is dict:
        raw_body = document.pop("_body", None)
        if (raw_body is None or type(raw_body) is str) and set(map(type, document.values())) <= {
            str
        }:
            return Headers._adopt(document, None), raw_body
        body = None if raw_body is None else _json_text(raw_body)
        items: Iterable[tuple[str, object]] = document.items()
    elif isinstance(document, _JSONObject):
        items = document
    else:
        raise RemoteProtocolError("JSON event is not an object")
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        if name == "_body":
            body = None if value is None else _json_text(value)
        elif isinstance(value, list) and not isinstance(value, _JSONObject):
            pairs.extend((name, _json_text(item)) for item in value)
        else:
            pairs.append((name, _json_text(value)))
    return _collect(pairs), body


def _json_object(pairs: list[tuple[str, object]]) -> object:
    document = dict(pairs)
    return document if len(document) == len(pairs) else _JSONObject(pairs)


def _json_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(_as_json(value))


def _as_json(value: object) -> object:
    """Nested objects back to dicts (only non-FreeSWITCH input has any)."""
    if isinstance(value, _JSONObject):
        return {name: _as_json(item) for name, item in value}
    if isinstance(value, dict):
        return {name: _as_json(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    return value


def _refuse_declarations(*_: object) -> int:
    raise RemoteProtocolError("XML event with a DTD or entity declaration refused")


def _parse_xml(data: bytes) -> ElementTree.Element:
    """Parse an XML event with expat, refusing any DTD before its internal subset is read.

    FreeSWITCH never sends a DOCTYPE; a peer that does could make entity
    expansion cost the reader seconds. The standard parser configured this way
    (the technique defusedxml uses, without its dependency) stops at the
    ``<!DOCTYPE`` itself.
    """
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_declarations
    parser.EntityDeclHandler = _refuse_declarations
    parser.UnparsedEntityDeclHandler = _refuse_declarations
    parser.ExternalEntityRefHandler = _refuse_declarations
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    parser.Parse(data, True)
    return builder.close()


def _decode_xml(data: bytes) -> EventParts:
    try:
        root = _parse_xml(data)
    except (expat.ExpatError, ValueError, LookupError) as exc:
        # LookupError: an XML declaration naming an encoding Python does not know.
        raise RemoteProtocolError(f"invalid XML event: {exc}") from None
    headers_element = root.find("headers")
    pairs: list[tuple[str, str]] = []
    if headers_element is not None:
        pairs = [(child.tag, url_decode(child.text or "")) for child in headers_element]
    length_text = root.findtext("Content-Length")
    body_text = root.findtext("body")
    body: str | None = None
    if length_text is not None:
        length_text = length_text.strip()
        length = header_int(length_text)
        if length is None:
            raise RemoteProtocolError("malformed Content-Length in XML event")
        # FreeSWITCH pretty-prints the body element; Content-Length says where the body ends.
        pairs.append(("Content-Length", length_text))
        raw = (body_text or "").encode("utf-8")
        body = raw[:length].decode("utf-8", "replace")
    elif body_text is not None:
        body = body_text
    return _collect(pairs), body


_XML_BODY_ENTITIES = {"\r": "&#13;"}

_DECODERS = {"plain": _decode_plain, "json": _decode_json, "xml": _decode_xml}


def decode_event_parts(data: bytes, event_format: EventFormat) -> EventParts:
    """Decode an event body of the given format into its headers and body."""
    return _DECODERS[event_format](data)


def _headers_to_write(headers: Headers, body: str | None) -> list[tuple[str, str]]:
    """The event's headers minus the Content-Length that frames its body.

    FreeSWITCH appends the body's Content-Length after the event's headers, so
    a decoded event carries it as its last Content-Length; the encoder writes
    a fresh one. Earlier ones are the sender's own (``sendevent`` with a
    Content-Length header) and are kept, as FreeSWITCH keeps them. Without a
    body no Content-Length can be written: in plain format it would announce one.
    """
    pairs = list(headers.multi_items())
    if body is None:
        return [(name, value) for name, value in pairs if name != "Content-Length"]
    framing = [index for index, (name, _) in enumerate(pairs) if name == "Content-Length"]
    if framing:
        del pairs[framing[-1]]
    return pairs


def encode_event_parts(headers: Headers, body: str | None, event_format: EventFormat) -> bytes:
    """Encode an event's parts the way FreeSWITCH writes them in the given format."""
    body_bytes = None if body is None else body.encode("utf-8")
    pairs = _headers_to_write(headers, body)
    if event_format == "plain":
        lines = [f"{name}: {url_encode(value)}\n" for name, value in pairs]
        if body_bytes is not None:
            lines.append(f"Content-Length: {len(body_bytes)}\n")
        text = "".join(lines) + "\n"
        return text.encode("utf-8") + (body_bytes or b"")
    if event_format == "json":
        document: dict[str, str | list[str]] = {}
        if body_bytes is not None:
            pairs.append(("Content-Length", str(len(body_bytes))))
        for name, value in pairs:
            present = document.get(name)
            if present is None:
                document[name] = value
            elif isinstance(present, list):
                present.append(value)
            else:
                document[name] = [present, value]
        if body is not None:
            document["_body"] = body
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    parts = ["<event>\n  <headers>\n"]
    for name, value in pairs:
        parts.append(f"    <{name}>{xml_escape(url_encode(value))}</{name}>\n")
    parts.append("  </headers>\n")
    if body_bytes is not None and body is not None:
        parts.append(f"  <Content-Length>{len(body_bytes)}</Content-Length>\n")
        # "\r" as a reference, as FreeSWITCH writes it: XML parsers turn a raw one into "\n".
        parts.append(f"  <body>{xml_escape(body, _XML_BODY_ENTITIES)}  </body>\n")
    parts.append("</event>\n")
    return "".join(parts).encode("utf-8")
