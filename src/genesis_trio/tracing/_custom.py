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
from ._lifecycle import Attributes, channel_attributes, copy, emit_span

__all__ = ["CUSTOM_SUBCLASSES", "CustomProcessor"]

Headers = Mapping[str, str]
Emitter = Callable[[str, Headers, Attributes], tuple[str, list[tuple[str, Attributes]]]]


def _first(attributes: Attributes, key: str, headers: Headers, *names: str) -> None:
    for name in names:
        value = headers.get(name)
        if value:
            attributes[key] = value
            return


def _copy_all(attributes: Attributes, headers: Headers, header_of: Mapping[str, str]) -> None:
    for key, header in header_of.items():
        copy(attributes, key, headers, header)


class CustomProcessor:
    """Emits one span per recognised CUSTOM event."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def process(self, subclass: str, headers: Headers, parent: Context | None) -> None:
        emit = _EMITTERS.get(subclass)
        if emit is None:
            return
        attributes = channel_attributes(headers)
        name, events = emit(subclass, headers, attributes)
        emit_span(self._tracer, name, attributes, parent, events)


def _profile(attributes: Attributes, headers: Headers) -> None:
    _first(attributes, n.SOFIA_PROFILE, headers, "profile-name", "variable_sofia_profile_name")


TRANSFER_SUBCLASSES: Final = frozenset({"sofia::transferor", "sofia::transferee"})


def transfer_kind(subclass: str, headers: Headers) -> tuple[str, str]:
    """``(role, type)`` of a sofia::transferor / ::transferee event."""
    role = subclass.split("::", 1)[1]
    # A REFER carrying Replaces= is an attended transfer; only the attended flow
    # produces a transferee event; anything else is a blind transfer.
    refer_to = headers.get("variable_sip_refer_to") or ""
    attended = role == "transferee" or "replaces=" in refer_to.lower()
    return role, "attended" if attended else "blind"


def _transfer(
    subclass: str, headers: Headers, attributes: Attributes
) -> tuple[str, list[tuple[str, Attributes]]]:
    role, kind = transfer_kind(subclass, headers)
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


def _copying(name: str, header_of: Mapping[str, str]) -> Emitter:
    """An emitter for events whose span is just headers copied to attributes."""

    def emit(
        subclass: str, headers: Headers, attributes: Attributes
    ) -> tuple[str, list[tuple[str, Attributes]]]:
        _copy_all(attributes, headers, header_of)
        return name, []

    return emit


_callcenter = _copying(
    n.FS_CALLCENTER_INFO,
    {
        n.CC_QUEUE: "CC-Queue",
        n.CC_ACTION: "CC-Action",
        n.CC_AGENT: "CC-Agent",
        n.CC_MEMBER_UUID: "CC-Member-UUID",
        n.CC_COUNT: "CC-Count",
        n.CC_SELECTION: "CC-Selection",
    },
)

_valet = _copying(
    n.FS_VALET_INFO,
    {
        n.VALET_LOT: "Valet-Lot-Name",
        n.VALET_EXTENSION: "Valet-Extension",
        n.VALET_ACTION: "Action",
        n.BRIDGE_TO_UUID: "Bridge-To-UUID",
    },
)

_EMITTERS: Final[Mapping[str, Emitter]] = {
    "sofia::transferor": _transfer,
    "sofia::transferee": _transfer,
    "sofia::register": _register,
    "sofia::unregister": _register,
    "sofia::expire": _register,
    "sofia::gateway_state": _register,
    "sofia::reinvite": _reinvite,
    "sofia::replaced": _reinvite,
    "callcenter::info": _callcenter,
    "conference::maintenance": _conference,
    "conference::cdr": _conference,
    "valet_parking::info": _valet,
}

CUSTOM_SUBCLASSES: Final = frozenset(_EMITTERS)
