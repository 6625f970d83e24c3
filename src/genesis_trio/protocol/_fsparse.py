"""A model of how FreeSWITCH splits and unescapes command arguments.

These are the decoders the encoders in :mod:`._encoding` are written
against, and the fake switch parses ``originate``, ``uuid_setvar``,
``filter`` and application arguments with them. The behaviour (not the code)
follows FreeSWITCH 1.10/1.11 ``src/switch_utils.c`` (``switch_separate_string``,
``cleanup_separated_string``, ``switch_find_end_paren``), ``src/switch_event.c``
(``switch_event_create_brackets``) and ``src/switch_ivr_originate.c``; every
rule is checked against a real switch by ``tests/real/test_injection_real.py``.
See ``docs/security.md`` for the rules in prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "API_WHITESPACE",
    "ENTERPRISE_DELIMITER",
    "OriginateLegs",
    "cleanup",
    "filter_matches",
    "find_end_paren",
    "parse_brackets",
    "parse_dial_string",
    "separate_string",
    "triggers_expansion",
    "variable_reference",
]

ESCAPE = "\\"
#: What ``switch_api_execute`` strips from both ends of every API command's argument.
API_WHITESPACE = "\r\n\t \x0b"
#: ``originate a:_:b``: "enterprise" originate, found anywhere in the dial string.
ENTERPRISE_DELIMITER = ":_:"
_UNESCAPED = {"n": "\n", "r": "\r", "t": "\t", "s": " "}

# FreeSWITCH refuses to store a channel variable from an originate block whose
# value holds "$" then any backslashes then "{" (switch_string_var_check_const).
_VARIABLE_REFERENCE = re.compile(r"\$\\*\{")


def variable_reference(value: str) -> bool:
    """True when FreeSWITCH sees a ``${...}`` reference in ``value``."""
    return _VARIABLE_REFERENCE.search(value) is not None


def triggers_expansion(value: str) -> bool:
    """True when application argument expansion would rewrite ``value``.

    ``switch_channel_expand_variables`` leaves a string untouched unless it
    holds a variable reference or "escaped data": a backslash followed by a
    backslash, ``n``, ``s``, ``t`` or a single quote.
    """
    if variable_reference(value):
        return True
    index = value.find(ESCAPE)
    while index >= 0:
        following = value[index + 1 : index + 2]
        if following in ("\\", "n", "s", "t", "'"):
            return True
        index = value.find(ESCAPE, index + 1)
    return False


def cleanup(text: str, delimiter: str | None) -> str:
    """One element after splitting: leading spaces, quotes and escapes removed.

    A backslash escapes a quote, a double quote, the delimiter, another
    backslash, and stands for newline / CR / tab / space before ``n r t s``;
    before anything else it is kept. A single quote opens a quoted stretch only
    if another one follows. Unquoted spaces at the end are dropped.
    """
    i = 0
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    out: list[str] = []
    end = 0
    quoted = False
    while i < n:
        char = text[i]
        if char == ESCAPE and i + 1 < n:
            following = text[i + 1]
            if following in "'\"\\" or (delimiter is not None and following == delimiter):
                out.append(following)
                end = len(out)
                i += 2
                continue
            if following in _UNESCAPED:
                out.append(_UNESCAPED[following])
                end = len(out)
                i += 2
                continue
        if char == "'" and (quoted or "'" in text[i + 1 :]):
            quoted = not quoted
            if quoted:
                end = len(out)
        else:
            out.append(char)
            if char != " " or quoted:
                end = len(out)
        i += 1
    return "".join(out[:end])


def _split_blank(text: str, limit: int) -> list[str]:
    parts: list[str] = []
    n = len(text)
    i = 0
    start = 0
    quoted = False
    state = "start"
    while i < n and len(parts) < limit:
        char = text[i]
        if state == "start":
            start = i
            parts.append("")  # placeholder, filled when the element ends
            state = "skip_initial"
        elif state == "skip_initial":
            if char == " ":
                i += 1
            else:
                state = "find"
        elif state == "find":
            if char == ESCAPE:
                i += 1
            elif char == "'":
                quoted = not quoted
            elif char == " " and not quoted:
                parts[-1] = text[start:i]
                start = -1
                state = "skip_end"
            i += 1
        else:  # skip_end
            if char == " ":
                i += 1
            else:
                state = "start"
    if parts and start >= 0:
        parts[-1] = text[start:]
    return [cleanup(part, None) for part in parts]


def _split_char(text: str, delimiter: str, limit: int) -> list[str]:
    parts: list[str] = []
    n = len(text)
    i = 0
    start = 0
    quoted = False
    state = "start"
    while i < n and len(parts) < limit:
        char = text[i]
        if state == "start":
            start = i
            parts.append("")
            state = "find"
            continue
        if char == ESCAPE:
            i += 1
        elif char == "'" and (quoted or "'" in text[i + 1 :]):
            quoted = not quoted
        elif char == delimiter and not quoted:
            parts[-1] = text[start:i]
            start = -1
            state = "start"
        i += 1
    if parts and start >= 0:
        parts[-1] = text[start:]
    return [cleanup(part, delimiter) for part in parts]


def separate_string(text: str, delimiter: str, limit: int = 1024) -> list[str]:
    """``switch_separate_string``: split on ``delimiter`` (at most ``limit`` parts).

    ``^^<d>`` at the start of ``text`` makes ``<d>`` the delimiter. The last
    part holds the rest of the text once ``limit`` parts exist.
    """
    if text.startswith("^^") and len(text) >= 4:
        delimiter = text[2]
        text = text[3:]
    if delimiter == " ":
        return _split_blank(text, limit)
    return _split_char(text, delimiter, limit)


def find_end_paren(text: str, open_char: str, close_char: str) -> int | None:
    """Index of the character closing the block that starts ``text`` (after spaces).

    Braces are counted raw: nothing escapes them and quotes do not hide them.
    """
    i = 0
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != open_char:
        return None
    depth = 1
    for j in range(i + 1, len(text)):
        char = text[j]
        if char == open_char and open_char != close_char:
            depth += 1
        elif char == close_char:
            depth -= 1
            if depth == 0:
                return j
    return None


def _store(variables: dict[str, str], name: str, value: str) -> None:
    # switch_event_add_header_string: an empty value deletes the header.
    if value == "":
        variables.pop(name, None)
    else:
        variables[name] = value


def parse_brackets(
    text: str, open_char: str, close_char: str, delimiter: str = ","
) -> tuple[dict[str, str], str] | None:
    """``switch_event_create_brackets``: the variables of the leading block and the rest.

    None when the block does not end (FreeSWITCH's "Parse Error").
    """
    end = find_end_paren(text, open_char, close_char)
    if end is None:
        return None
    start = text.index(open_char)
    body = text[start + 1 : end]
    if body.startswith("^^") and len(body) >= 3:
        delimiter = body[2]
        body = body[3:]
    variables: dict[str, str] = {}
    if body:
        for item in separate_string(body, delimiter):
            pair = separate_string(item, "=", 2)
            if len(pair) == 2:
                _store(variables, pair[0], pair[1])
    return variables, text[end + 1 :]


@dataclass
class OriginateLegs:
    """A dial string as ``switch_ivr_originate`` reads it."""

    variables: dict[str, str] = field(default_factory=dict)
    #: ``|``-separated groups (tried in turn), each a list of ``,``-separated legs
    #: (rung at once); each leg is its own variables and its dial path.
    groups: list[list[tuple[dict[str, str], str]]] = field(default_factory=list)
    enterprise: bool = False
    error: str | None = None

    @property
    def legs(self) -> list[tuple[dict[str, str], str]]:
        return [leg for group in self.groups for leg in group]


def parse_dial_string(text: str) -> OriginateLegs:
    """Variables and legs of an originate's first argument (already unescaped)."""
    result = OriginateLegs()
    if ENTERPRISE_DELIMITER in text:
        result.enterprise = True
    data = text.lstrip(" ")
    for open_char, close_char in (("<", ">"), ("{", "}")):
        while data.startswith(open_char):
            parsed = parse_brackets(data, open_char, close_char)
            if parsed is None:
                result.error = "Parse Error"
                return result
            variables, data = parsed
            result.variables.update(variables)
    data = data.lstrip(" ")
    if not data:
        result.error = "No origination URL specified"
        return result
    for group in separate_string(data, "|"):
        legs: list[tuple[dict[str, str], str]] = []
        for leg in _split_legs(group):
            leg = leg.lstrip(" ")
            leg_variables: dict[str, str] = {}
            while leg.startswith("["):
                leg_parsed = parse_brackets(leg, "[", "]")
                if leg_parsed is None or leg_parsed[1] == leg:
                    result.error = "Parse Error"
                    return result
                more, leg = leg_parsed
                leg_variables.update(more)
            legs.append((leg_variables, leg))
        result.groups.append(legs)
    return result


def _split_legs(group: str) -> list[str]:
    # Commas inside a [...] block are not leg separators (switch_ivr_originate
    # masks them before splitting); elsewhere an unescaped comma is.
    masked: list[str] = []
    depth = 0
    for index, char in enumerate(group):
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        if char == "," and depth and (index == 0 or group[index - 1] != ESCAPE):
            masked.append("\x01")
        else:
            masked.append(char)
    return [part.replace("\x01", ",") for part in separate_string("".join(masked), ",")]


def filter_matches(filter_value: str, header_value: str) -> tuple[bool, bool]:
    """How an ESL ``filter`` value compares with an event's header value.

    Returns ``(positive, matched)``: leading ``+``, ``-`` and spaces set the
    polarity (the last sign wins) and are not part of the comparison; a value
    starting with ``/`` is a regular expression (``/re/flags``), anything else
    is compared case-insensitively (ASCII only, as ``strcasecmp``).
    """
    positive = True
    i = 0
    while i < len(filter_value) and filter_value[i] in "+- ":
        if filter_value[i] == "+":
            positive = True
        elif filter_value[i] == "-":
            positive = False
        i += 1
    compared = filter_value[i:]
    if filter_value.startswith("/"):
        return positive, _regex_matches(compared, header_value)
    return positive, _ascii_lower(compared) == _ascii_lower(header_value)


_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _regex_matches(expression: str, subject: str) -> bool:
    # PCRE without UTF mode folds ASCII letters only.
    flags = re.ASCII
    if expression.startswith("/"):
        body = expression[1:]
        cut = body.rfind("/")
        if cut < 0:
            return False
        options = body[cut + 1 :]
        expression = body[:cut]
        if "i" in options:
            flags |= re.IGNORECASE
        if "s" in options:
            flags |= re.DOTALL
    # PCRE's \z (absolute end) is spelled \Z in Python.
    expression = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", expression)
    try:
        return re.search(expression, subject, flags) is not None
    except re.error:
        return False
