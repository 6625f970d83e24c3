"""Encoders for the syntaxes FreeSWITCH parses after the ESL framing.

Each function takes the exact value the caller wants FreeSWITCH to end up
with and returns the text to put on the wire, such that FreeSWITCH's own
parsers (modelled in :mod:`._fsparse`) decode it back to exactly that value;
or it raises :class:`~genesis_trio.LocalProtocolError` saying why that value
cannot be carried. Nothing is ever altered silently. ``docs/security.md``
states the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .._exceptions import LocalProtocolError
from ._fsparse import API_WHITESPACE, ENTERPRISE_DELIMITER, ESCAPE, variable_reference

__all__ = [
    "app_arg_headers",
    "app_word",
    "blank_argument",
    "check_text",
    "dial_path",
    "event_names",
    "filter_header",
    "filter_value",
    "originate_argument",
    "originate_variables",
    "setvar_value",
    "variable_name",
]

#: Channel variable names we accept (letters, digits, ``_ . -``); anything else
#: would need quoting in some syntax, and FreeSWITCH's own names never do.
_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_ARRAY_PREFIX = "ARRAY::"
_FILTER_KEYWORDS = frozenset({"add", "delete", "all"})
# Characters a dial path may not hold: leg separators, variable blocks, quotes,
# escapes and whitespace are all read by originate's parsers.
_DIAL_PATH_FORBIDDEN = frozenset(",|{}[]<>'\"\\") | frozenset(chr(c) for c in range(0x21))
_EVENT_WORD = re.compile(r"[^\s\x00]+")


def _refuse(what: str, value: str, reason: str) -> LocalProtocolError:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return LocalProtocolError(f"{what} {shown!r}: {reason}")


def check_text(value: str, what: str) -> str:
    """Any text sent to FreeSWITCH: a str, no NUL (C strings end there), valid UTF-8."""
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a str, not {type(value).__name__}")
    if "\x00" in value:
        raise _refuse(what, value, "contains a NUL byte, which ends a C string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(what, value, "is not encodable as UTF-8") from None
    return value


def variable_name(name: str, what: str = "variable name") -> str:
    check_text(name, what)
    if _VARIABLE_NAME.fullmatch(name) is None:
        raise _refuse(what, name, "must be letters, digits, '_', '.' or '-'")
    return name


def _stored_value(value: str, what: str) -> str:
    """Checks shared by every value FreeSWITCH stores as a channel variable."""
    check_text(value, what)
    if value == "":
        raise _refuse(what, value, "FreeSWITCH deletes a variable set to ''; pass None to unset")
    if value.startswith(_ARRAY_PREFIX):
        raise _refuse(what, value, "FreeSWITCH splits values starting with ARRAY:: into arrays")
    return value


# What _escape always rewrites; most values (uuids, dial paths, names) hold none of it.
_ALWAYS_ESCAPED = frozenset(ESCAPE + " \n\r\t")


def _escape(value: str, specials: str) -> str:
    """Backslash-escape ``specials`` (the backslash itself always)."""
    if _ALWAYS_ESCAPED.isdisjoint(value) and (not specials or set(specials).isdisjoint(value)):
        return value  # nothing to escape: skip the per-character loop
    return _escape_each(value, specials)


def _escape_each(value: str, specials: str) -> str:
    out = []
    for char in value:
        if char == ESCAPE or char in specials:
            out.append(ESCAPE + char)
        elif char == " ":
            out.append("\\s")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        else:
            out.append(char)
    return "".join(out)


def blank_argument(value: str, what: str = "argument") -> str:
    """One argument of an API command that FreeSWITCH splits on spaces.

    ``switch_separate_string(' ')`` unquotes and unescapes every argument:
    backslash, single quote, space, tab, CR and LF are escaped; the rest
    passes. ``switch_api_execute`` strips trailing whitespace (also vertical
    tab, which has no escape) from the whole argument: such a value is quoted.
    """
    check_text(value, what)
    if value == "":
        raise _refuse(what, value, "an empty argument cannot be passed")
    encoded = _escape(value, "'")
    if encoded[-1] in API_WHITESPACE:
        return f"'{encoded}'"
    return encoded


def setvar_value(value: str) -> str:
    """The value of ``uuid_setvar <uuid> <name> <value>``."""
    return blank_argument(_stored_value(value, "variable value"), "variable value")


def _braces_balanced(value: str) -> bool:
    depth = 0
    for char in value:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _originate_value(name: str, value: str) -> str:
    what = f"originate variable {name!r}"
    _stored_value(value, what)
    if not _braces_balanced(value):
        raise _refuse(
            what, value, "unbalanced '{' / '}' would end the variable block (nothing escapes them)"
        )
    if ENTERPRISE_DELIMITER in value:
        raise _refuse(what, value, "':_:' anywhere in a dial string starts an enterprise originate")
    if variable_reference(value):
        raise _refuse(what, value, "FreeSWITCH refuses originate values holding '${'")
    # Inside out: the '=' split, then the ',' split of the block; the whole
    # originate argument is escaped once more by originate_argument.
    return _escape(_escape(value, "'"), "',")


def originate_variables(variables: Mapping[str, object]) -> str:
    """``{name=value,...}`` (before the whole-argument escaping of :func:`originate_argument`).

    Values are ``str(value)``; an empty mapping gives ``""``.
    """
    if not variables:
        return ""
    items = []
    for name, value in variables.items():
        variable_name(name, "originate variable name")
        items.append(f"{name}={_originate_value(name, str(value))}")
    return "{" + ",".join(items) + "}"


def dial_path(path: str) -> str:
    """One leg's dial path (``loopback/9002/default``, ``sofia/gateway/gw/1234``).

    Refused: leg separators (``,`` ``|`` ``:_:``), variable blocks (``{}``
    ``[]`` ``<>``: pass variables through the variables argument), quotes,
    backslashes, whitespace and control characters.
    """
    check_text(path, "dial path")
    if not path:
        raise _refuse("dial path", path, "is empty")
    bad = sorted({char for char in path if char in _DIAL_PATH_FORBIDDEN})
    if bad:
        raise _refuse("dial path", path, f"holds {''.join(bad)!r} (one leg, no variable blocks)")
    if ENTERPRISE_DELIMITER in path:
        raise _refuse("dial path", path, "':_:' separates enterprise originate legs")
    if path.startswith("^^"):
        raise _refuse("dial path", path, "'^^' at the start changes the leg separator")
    return path


def originate_argument(variables: Mapping[str, object], path: str) -> str:
    """The first argument of ``originate``: ``{variables}dial_path``, escaped."""
    dial_path(path)
    return _escape(originate_variables(variables) + path, "'")


def app_word(value: str, what: str) -> str:
    """One word of an application argument that the application splits on spaces.

    Applications see their argument after variable expansion, which rewrites
    ``${...}``, ``\\\\``, ``\\'`` and ``\\$``; then ``switch_separate_string``
    unquotes it. Spaces are sent as ``\\s`` (which expansion leaves alone);
    quotes and backslash escapes are refused.
    """
    check_text(value, what)
    if value == "":
        raise _refuse(what, value, "is empty")
    _check_expansion(value, what)
    if "'" in value or '"' in value:
        raise _refuse(what, value, "quotes are read by the application's argument splitter")
    if re.search(r"\\([\\'\" nrts$]|\Z)", value):
        raise _refuse(what, value, "backslash escapes are read by the argument splitter")
    if value.strip("\t\n\r ") != value:
        raise _refuse(what, value, "leading or trailing whitespace is stripped")
    if "\n" in value or "\r" in value:
        raise _refuse(what, value, "line breaks are not carried in application words")
    return value.replace(" ", "\\s")


def _check_expansion(value: str, what: str) -> None:
    if variable_reference(value) or re.search(r"\\[\\'$]", value):
        raise _refuse(
            what,
            value,
            "FreeSWITCH expands '${...}' and rewrites '\\\\', \"\\'\" and '\\$' in "
            "application arguments (pass expand=True to execute() to allow it)",
        )


def app_arg_headers(
    arg: str | None, *, expand: bool = False
) -> tuple[list[tuple[str, str]], str | None]:
    """The ``sendmsg`` headers (and body) carrying an application argument.

    A header value loses its leading spaces and cannot hold a line break, so
    such arguments travel as a ``text/plain`` body, which FreeSWITCH takes
    byte for byte. Unless ``expand`` is set, arguments that FreeSWITCH's
    variable expansion would rewrite are refused.
    """
    if arg is None or arg == "":
        return [], None
    check_text(arg, "application argument")
    if not expand:
        _check_expansion(arg, "application argument")
    if arg[0] in " \t" or "\n" in arg or "\r" in arg:
        return [("content-type", "text/plain")], arg
    return [("execute-app-arg", arg)], None


def filter_header(name: str) -> str:
    """A header name for ``filter``: one word, not one of filter's keywords."""
    check_text(name, "filter header")
    if not name or any(char.isspace() for char in name) or ":" in name:
        raise _refuse("filter header", name, "must be one word without spaces or ':'")
    if name.lower() in _FILTER_KEYWORDS:
        raise _refuse("filter header", name, "is a keyword of the filter command")
    return name


def filter_value(value: str) -> str:
    """A filter value that FreeSWITCH compares literally (case-insensitively, as it does).

    A value starting with ``+``, ``-``, a space or ``/`` would be read as a
    polarity or a regular expression: it is sent as an anchored,
    case-insensitive regular expression matching exactly that text.
    """
    check_text(value, "filter value")
    if value == "":
        raise _refuse("filter value", value, "is empty")
    if "\n" in value or "\r" in value:
        raise _refuse("filter value", value, "contains a line break")
    # A value that ends in whitespace goes the regex way too, so nothing can trim it.
    if value[0] not in "+- /" and value[-1] not in API_WHITESPACE:
        return value
    return "/\\A" + "".join(_regex_literal(char) for char in value) + "\\z/i"


def _regex_literal(char: str) -> str:
    if char.isascii() and not char.isalnum():
        return "\\" + char if char.isprintable() and char != " " else f"\\x{ord(char):02x}"
    return char


def event_names(names: Iterable[str]) -> str:
    """The words of ``event`` / ``nixevent``: event names first, then ``CUSTOM`` subclasses.

    A CUSTOM subclass is recognised by its ``::`` (``sofia::register``,
    ``SMS::SEND_MESSAGE``); FreeSWITCH reads every word after ``CUSTOM`` as one.
    """
    plain: list[str] = []
    subclasses: list[str] = []
    custom = False
    for name in names:
        check_text(name, "event name")
        if _EVENT_WORD.fullmatch(name) is None:
            raise _refuse("event name", name, "must be one word")
        if "::" in name:
            subclasses.append(name)
        elif name.upper() == "CUSTOM":
            custom = True
        else:
            plain.append(name)
    if subclasses or custom:
        plain.append("CUSTOM")
    return " ".join(plain + subclasses)
