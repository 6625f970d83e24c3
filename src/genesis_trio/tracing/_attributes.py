"""Turning an event's headers into span attributes (only ever called while recording)."""

from __future__ import annotations

from typing import Final

from opentelemetry.util.types import AttributeValue

from ..protocol import Event
from . import _names as n

__all__ = ["event_attributes", "header_attribute_name", "span_attribute_limit"]

_NAME_CACHE_LIMIT: Final = 8192
DEFAULT_ATTRIBUTE_LIMIT: Final = 128


class _AttributeNames(dict[str, str]):
    """Header name -> attribute name; indexing computes (and caches) a missing one.

    A dict subclass so that ``map(names.__getitem__, headers)`` runs in C for
    every header already seen.
    """

    def __missing__(self, header: str) -> str:
        name = n.EVENT_HEADER_PREFIX + header.lower().replace("-", "_")
        # Header names come from the peer; a bounded cache cannot be grown without limit.
        if len(self) < _NAME_CACHE_LIMIT:
            self[header] = name
        return name


_names = _AttributeNames()


def header_attribute_name(header: str) -> str:
    """``Event-Subclass`` -> ``event.header.event_subclass``."""
    return _names[header]


def event_attributes(
    event: Event, limit: int = DEFAULT_ATTRIBUTE_LIMIT
) -> dict[str, AttributeValue]:
    """The ``process_event`` attributes: name, uuid, sip.call_id, then the headers.

    A header that appeared more than once becomes a list attribute. At most
    ``limit`` attributes are built (the SDK's span attribute limit, 128 by
    default; FreeSWITCH channel events carry more headers than that): the SDK
    would drop the excess one by one with a warning each, so the headers that
    come last on the wire (the ``variable_*`` ones) are left out here instead.
    """
    headers = event.headers
    first = headers._first
    attributes: dict[str, AttributeValue] = {}
    event_name = first.get("Event-Name")
    if event_name is not None:
        attributes[n.EVENT_NAME] = event_name
    uuid = first.get("Unique-ID")
    if uuid is not None:
        attributes[n.EVENT_UUID] = uuid
    sip_call_id = first.get("variable_sip_call_id")
    if sip_call_id:
        attributes[n.SIP_CALL_ID] = sip_call_id
    extra = headers._extra
    if not extra and len(attributes) + len(first) <= limit:
        # The common case, in C: every header once, all of them within the limit.
        attributes.update(zip(map(_names.__getitem__, first), first.values(), strict=True))
        return attributes
    for name, value in first.items():
        if len(attributes) >= limit:
            break
        if extra and name in extra:
            attributes[_names[name]] = [value, *extra[name]]
        else:
            attributes[_names[name]] = value
    return attributes


def span_attribute_limit(span: object) -> int:
    """How many attributes ``span`` keeps (SDK spans know their limits)."""
    limits = getattr(span, "_limits", None)
    limit = getattr(limits, "max_span_attributes", None)
    return limit if isinstance(limit, int) and limit > 0 else DEFAULT_ATTRIBUTE_LIMIT
