"""Parsing ``originate`` arguments as mod_commands' originate_function does."""

from __future__ import annotations

from ._channels import OriginateRequest

__all__ = ["ORIGINATE_USAGE", "OriginateSyntaxError", "parse_originate"]

ORIGINATE_USAGE = (
    "<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
    "[<cid_name>] [<cid_num>] [<timeout_sec>]"
)

_BLOCKS = {"{": "}", "[": "]", "<": ">"}


class OriginateSyntaxError(ValueError):
    """The arguments do not fit the originate syntax; the str is the -USAGE reply."""


def parse_originate(argument: str) -> OriginateRequest:
    text = argument.strip()
    if not text:
        raise OriginateSyntaxError(f"-USAGE {ORIGINATE_USAGE}\n")
    variables: dict[str, str] = {}
    # Leading {a=b,c=d} (and [..] / <..>) blocks set channel variables.
    while text and text[0] in _BLOCKS:
        close = text.find(_BLOCKS[text[0]])
        if close < 0:
            raise OriginateSyntaxError(f"-USAGE: {ORIGINATE_USAGE}\n")
        variables.update(_parse_variables(text[1:close]))
        text = text[close + 1 :]
    words = [None if word.lower() == "undef" else word for word in text.split()]
    if len(words) < 2 or len(words) > 7:
        raise OriginateSyntaxError(f"-USAGE: {ORIGINATE_USAGE}\n")
    dial_path, target, *optional = words
    if dial_path is None or target is None:
        raise OriginateSyntaxError(f"-USAGE: {ORIGINATE_USAGE}\n")
    optional += [None] * (5 - len(optional))
    _dialplan, _context, cid_name, cid_number, timeout_text = optional
    request = OriginateRequest(
        dial_path=dial_path,
        variables=variables,
        caller_id_name=cid_name,
        caller_id_number=cid_number,
    )
    timeout = variables.get("originate_timeout") or timeout_text
    if timeout and timeout.strip().isdigit():
        request.timeout = float(int(timeout))
    if target.startswith("&") and len(target) > 1:
        name = target[1:]
        data = ""
        if "(" in name:
            name, _, data = name.partition("(")
            data = data[:-1] if data.endswith(")") else data
        request.application = name
        request.application_data = data
    else:
        # The fake has no dialplan: an extension is routed to park.
        request.extension = target
        request.application = "park"
    return request


def _parse_variables(block: str) -> dict[str, str]:
    """``a=b,c='x,y'``: commas split pairs except inside single quotes."""
    variables: dict[str, str] = {}
    pairs: list[str] = []
    current: list[str] = []
    quoted = False
    for char in block:
        if char == "'":
            quoted = not quoted
        elif char == "," and not quoted:
            pairs.append("".join(current))
            current = []
            continue
        current.append(char)
    pairs.append("".join(current))
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        variables[name] = value
    return variables
