"""Spans for the CUSTOM subclasses that describe calls and registrations.

sofia (transfers, registrations, reinvites, replaces), callcenter,
conference and valet parking. Header names are FreeSWITCH's own (lower-case
for the sofia registration events, as mod_sofia sends them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context

from . import _names as n
from ._lifecycle import Attributes, channel_attributes, copy

__all__ = ["CUSTOM_SUBCLASSES", "CustomProcessor"]

Headers = Mapping[str, str]

CUSTOM_SUBCLASSES: Final = frozenset(
    {
        "sofia::transferor",
        "sofia::transferee",
        "sofia::register",
        "sofia::unregister",
        "sofia::expire",
        "sofia::gateway_state",
        "sofia::reinvite",
        "sofia::replaced",
        "callcenter::info",
        "conference::maintenance",
        "conference::cdr",
        "valet_parking::info",
    }
)


def _first(attributes: Attributes, key: str, headers: Headers, *names: str) -> None:
    for name in names:
        value = headers.get(name)
        if value:
            attributes[key] = value
            return


class CustomProcessor:
    """Emits one span per recognised CUSTOM event."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def process(self, subclass: str, headers: Headers, parent: Context | None) -> None:
        emit = self._dispatch(subclass)
        if emit is None:
            return
        attributes = channel_attributes(headers)
        name, events = emit(subclass, headers, attributes)
        span = self._tracer.start_span(name, context=parent, attributes=attributes)
        for event_name, event_attributes in events:
            span.add_event(event_name, event_attributes)
        span.end()

    def _dispatch(
        self, subclass: str
    ) -> Callable[[str, Headers, Attributes], tuple[str, list[tuple[str, Attributes]]]] | None:
        if subclass in ("sofia::transferor", "sofia::transferee"):
            return _transfer
        if subclass in ("sofia::register", "sofia::unregister", "sofia::expire"):
            return _register
        if subclass == "sofia::gateway_state":
            return _register
        if subclass in ("sofia::reinvite", "sofia::replaced"):
            return _reinvite
        if subclass == "callcenter::info":
            return _callcenter
        if subclass in ("conference::maintenance", "conference::cdr"):
            return _conference
        if subclass == "valet_parking::info":
            return _valet
        return None


def _profile(attributes: Attributes, headers: Headers) -> None:
    _first(attributes, n.SOFIA_PROFILE, headers, "profile-name", "variable_sofia_profile_name")


def _transfer(
    subclass: str, headers: Headers, attributes: Attributes
) -> tuple[str, list[tuple[str, Attributes]]]:
    role = subclass.split("::", 1)[1]
    # A REFER carrying Replaces= is an attended transfer; only the attended flow
    # produces a transferee event; anything else is a blind transfer.
    refer_to = headers.get("variable_sip_refer_to") or ""
    attended = role == "transferee" or "replaces=" in refer_to.lower()
    kind = "attended" if attended else "blind"
    attributes[n.TRANSFER_ROLE] = role
    attributes[n.TRANSFER_TYPE] = kind
    _profile(attributes, headers)
    initiated: Attributes = {n.TRANSFER_ROLE: role, n.TRANSFER_TYPE: kind}
    return n.FS_SOFIA_TRANSFER, [(n.EVENT_TRANSFER_INITIATED, initiated)]


def _register(
    subclass: str, headers: Headers, attributes: Attributes
) -> tuple[str, list[tuple[str, Attributes]]]:
    user = headers.get("from-user") or headers.get("username")
    host = headers.get("from-host") or headers.get("realm")
    if user and host:
        attributes[n.REGISTER_AOR] = f"{user}@{host}"
    attributes[n.REGISTER_ACTION] = subclass.split("::", 1)[1]
    _first(attributes, n.GATEWAY_NAME, headers, "Gateway", "Gateway-Name")
    _first(attributes, n.GATEWAY_STATE, headers, "State")
    _profile(attributes, headers)
    return n.FS_SOFIA_REGISTER, []


def _reinvite(
    subclass: str, headers: Headers, attributes: Attributes
) -> tuple[str, list[tuple[str, Attributes]]]:
    _profile(attributes, headers)
    name = n.FS_SOFIA_REPLACED if subclass == "sofia::replaced" else n.FS_SOFIA_REINVITE
    return name, []


def _callcenter(
    subclass: str, headers: Headers, attributes: Attributes
) -> tuple[str, list[tuple[str, Attributes]]]:
    copy(attributes, n.CC_QUEUE, headers, "CC-Queue")
    copy(attributes, n.CC_ACTION, headers, "CC-Action")
    copy(attributes, n.CC_AGENT, headers, "CC-Agent")
    copy(attributes, n.CC_MEMBER_UUID, headers, "CC-Member-UUID")
    copy(attributes, n.CC_COUNT, headers, "CC-Count")
    copy(attributes, n.CC_SELECTION, headers, "CC-Selection")
    return n.FS_CALLCENTER_INFO, []


def _conference(
    subclass: str, headers: Headers, attributes: Attributes
) -> tuple[str, list[tuple[str, Attributes]]]:
    copy(attributes, n.CONFERENCE_NAME, headers, "Conference-Name")
    _first(
        attributes, n.CONFERENCE_PROFILE, headers, "Conference-Profile-Name", "Conference-Profile"
    )
    copy(attributes, n.CONFERENCE_ACTION, headers, "Action")
    copy(attributes, n.CONFERENCE_MEMBER_ID, headers, "Member-ID")
    name = n.FS_CONFERENCE_CDR if subclass == "conference::cdr" else n.FS_CONFERENCE_MAINTENANCE
    return name, []


def _valet(
    subclass: str, headers: Headers, attributes: Attributes
) -> tuple[str, list[tuple[str, Attributes]]]:
    copy(attributes, n.VALET_LOT, headers, "Valet-Lot-Name")
    copy(attributes, n.VALET_EXTENSION, headers, "Valet-Extension")
    copy(attributes, n.VALET_ACTION, headers, "Action")
    copy(attributes, n.BRIDGE_TO_UUID, headers, "Bridge-To-UUID")
    return n.FS_VALET_INFO, []
