"""Parsing ``originate`` arguments as mod_commands' originate_function does."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol import fsparse

__all__ = ["ORIGINATE_USAGE", "OriginateRequest", "OriginateSyntaxError", "parse_originate"]

ORIGINATE_USAGE = (
    "<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
    "[<cid_name>] [<cid_num>] [<timeout_sec>]"
)


@dataclass(slots=True)
class OriginateRequest:
    """A parsed ``originate``: ``{vars}dial_path &app(data)`` and the optional fields."""

    dial_path: str
    variables: dict[str, str] = field(default_factory=dict)
    application: str = "park"
    application_data: str = ""
    extension: str | None = None
    timeout: float = 60.0
    caller_id_name: str | None = None
    caller_id_number: str | None = None
    #: How the whole dial string parsed (every leg, for multi-leg dial strings).
    dial_string: fsparse.OriginateLegs | None = None


class OriginateSyntaxError(ValueError):
    """The arguments do not fit the originate syntax; the str is the reply (-USAGE / -ERR)."""


def parse_originate(argument: str) -> OriginateRequest:
    """The request FreeSWITCH would read from ``originate``'s arguments.

    Arguments are split and unescaped as mod_commands does, the dial string's
    ``<>`` / ``{}`` blocks and legs as switch_ivr_originate does (the model in
    ``genesis_trio.protocol.fsparse``). The fake dials one leg: the first of
    a multi-leg dial string (``a,b``, ``a|b``, ``a:_:b``), whose parse is
    kept in ``OriginateRequest.dial_string`` for tests to inspect.
    """
    words: list[str | None] = [
        None if word.lower() == "undef" else word
        for word in fsparse.separate_string(argument, " ", 10)
    ]
    if len(words) < 2 or len(words) > 7:
        raise OriginateSyntaxError(f"-USAGE: {ORIGINATE_USAGE}\n")
    aleg, target, *optional = words
    if target is None:
        raise OriginateSyntaxError(f"-USAGE: {ORIGINATE_USAGE}\n")
    if aleg is None:
        raise OriginateSyntaxError("-ERR DESTINATION_OUT_OF_ORDER\n")
    first = aleg.split(fsparse.ENTERPRISE_DELIMITER, 1)[0]
    parsed = fsparse.parse_dial_string(first)
    parsed.enterprise = fsparse.ENTERPRISE_DELIMITER in aleg
    if parsed.error is not None or not parsed.legs:
        raise OriginateSyntaxError("-ERR DESTINATION_OUT_OF_ORDER\n")
    leg_variables, dial_path = parsed.legs[0]
    optional += [None] * (5 - len(optional))
    _dialplan, _context, cid_name, cid_number, timeout_text = optional
    request = OriginateRequest(
        dial_path=dial_path,
        variables={**parsed.variables, **leg_variables},
        caller_id_name=cid_name,
        caller_id_number=cid_number,
        dial_string=parsed,
    )
    timeout = request.variables.get("originate_timeout") or timeout_text
    if timeout and timeout.strip().isdigit():
        request.timeout = float(int(timeout))
    if target.startswith("&") and len(target) > 1:
        # mod_commands: the application ends at the first ')' and its data starts at '('.
        name = target[1:].split(")", 1)[0]
        name, _, data = name.partition("(")
        request.application = name
        request.application_data = data
    else:
        # The fake has no dialplan: an extension is routed to park.
        request.extension = target
        request.application = "park"
    return request
