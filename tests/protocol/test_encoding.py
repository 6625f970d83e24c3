"""The encoders against the model of FreeSWITCH's parsers (validated on the real switch
by tests/real/test_injection_real.py): every value decodes back exactly, or is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio import LocalProtocolError
from genesis_trio.protocol import _encoding as enc
from genesis_trio.protocol import _fsparse as fs
from genesis_trio.protocol import commands

# Text that exercises every parser: quotes, separators, blocks, escapes, spaces
# at both ends, unicode, and the prefixes FreeSWITCH gives a meaning to.
HOSTILE = st.one_of(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(list(" ,'\"{}[]<>\\|^%$=:_&()\t\n\r\x0b!;/+-@#")),
            st.characters(codec="utf-8", exclude_characters="\x00"),
        ),
        max_size=40,
    ),
    st.sampled_from(["ARRAY::", "^^:", ":_:", "${", "$\\{", "\\s", "\\'", "'", "\\"]).flatmap(
        lambda piece: st.text(max_size=10).map(lambda tail: piece + tail.replace("\x00", ""))
    ),
)

ISSUE_VALUES = [
    "Smith, John",
    "Mallory,origination_caller_id_number=911",
    "a}b",
    "x{y",
    "back\\slash",
    "  padded  ",
    "x}loopback/9002/default",
    "'quoted'",
]


def decode_originate(argument: str) -> fs.OriginateLegs:
    words = fs.separate_string(f"{argument} &park()", " ", 10)
    assert words[1] == "&park()"
    return fs.parse_dial_string(words[0])


def originate_round_trip(value: str) -> str | None:
    """The value FreeSWITCH would store, or None when the encoder refused it."""
    try:
        argument = enc.originate_argument({"x": value, "y": "tail"}, "loopback/9002/default")
    except LocalProtocolError:
        return None
    legs = decode_originate(argument)
    assert legs.error is None
    assert not legs.enterprise
    assert [leg for _, leg in legs.legs] == ["loopback/9002/default"]
    assert legs.variables.get("y") == "tail"
    return legs.variables.get("x")


@settings(max_examples=500)
@given(value=HOSTILE)
def test_originate_variables_decode_exactly_or_are_refused(value: str) -> None:
    stored = originate_round_trip(value)
    assert stored is None or stored == value


@settings(max_examples=500)
@given(value=HOSTILE)
def test_setvar_values_decode_exactly_or_are_refused(value: str) -> None:
    try:
        encoded = enc.setvar_value(value)
    except LocalProtocolError:
        return
    assert "\n" not in encoded
    assert "\r" not in encoded
    # switch_api_execute strips the whole argument first.
    argument = f"some-uuid x {encoded}".strip(fs.API_WHITESPACE)
    uuid, name, stored = fs.separate_string(argument, " ", 3)
    assert (uuid, name, stored) == ("some-uuid", "x", value)


@pytest.mark.parametrize("value", ISSUE_VALUES)
def test_issue_values(value: str) -> None:
    stored = originate_round_trip(value)
    if value in ("a}b", "x{y", "x}loopback/9002/default"):
        assert stored is None
    else:
        assert stored == value
    argument = f"u x {enc.setvar_value(value)}".strip(fs.API_WHITESPACE)
    assert fs.separate_string(argument, " ", 3)[2] == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "deletes"),
        ("ARRAY::a|:b", "ARRAY"),
        ("a}b", "unbalanced"),
        ("x:_:y", "enterprise"),
        ("${x}", "\\$\\{"),
        ("nul\x00", "NUL"),
    ],
)
def test_originate_refusals_say_why(value: str, reason: str) -> None:
    with pytest.raises(LocalProtocolError, match=reason):
        enc.originate_argument({"x": value}, "loopback/1")


@pytest.mark.parametrize(
    "path",
    [
        "a,b",
        "a|b",
        "a:_:b",
        "{x=1}loopback/1",
        "[x=1]loopback/1",
        "<x=1>loopback/1",
        "loopback/1 &echo",
        "^^:loopback/1",
        "",
        "it's",
        "back\\slash",
    ],
)
def test_dial_paths_are_one_leg(path: str) -> None:
    with pytest.raises(LocalProtocolError):
        enc.dial_path(path)


@pytest.mark.parametrize(
    "path", ["loopback/9002/default", "sofia/gateway/gw/+15551234", "user/1000@domain;x=y"]
)
def test_plain_dial_paths_pass_unchanged(path: str) -> None:
    assert enc.dial_path(path) == path
    legs = decode_originate(enc.originate_argument({}, path))
    assert [leg for _, leg in legs.legs] == [path]


def test_injected_dial_string_is_what_the_old_encoding_allowed() -> None:
    # The issue's toll-fraud case, as the unescaped form FreeSWITCH reads it.
    legs = fs.parse_dial_string("{x=x}loopback/9002/default}loopback/1234/default")
    assert legs.variables == {"x": "x"}
    assert [leg for _, leg in legs.legs] == ["loopback/9002/default}loopback/1234/default"]
    legs = fs.parse_dial_string("{x=Smith, John}loopback/1")
    assert legs.variables == {"x": "Smith"}


@pytest.mark.parametrize("value", ["+15551234", "-x", " lead", "/path", "+", "a+b", "ABC"])
def test_filter_values_compare_literally(value: str) -> None:
    wire = enc.filter_value(value)
    assert fs.filter_matches(wire, value) == (True, True)
    assert fs.filter_matches(wire, value.lower()) == (True, True)  # as strcasecmp
    assert fs.filter_matches(wire, value + "x")[1] is False
    assert fs.filter_matches(wire, "x" + value)[1] is False


@settings(max_examples=300)
@given(
    value=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00\r\n"), min_size=1),
    other=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00")),
)
def test_filter_values_match_only_themselves(value: str, other: str) -> None:
    wire = enc.filter_value(value)
    positive, matched = fs.filter_matches(wire, value)
    assert positive
    assert matched
    # strcasecmp folds ASCII letters only; so does the regex we send (PCRE without UTF).
    same = other.encode().lower() == value.encode().lower()
    assert fs.filter_matches(wire, other)[1] is same


@pytest.mark.parametrize(
    "name", ["delete", "DELETE", "add", "all", "Caller ID", "", "a:b", "x\x00"]
)
def test_filter_headers_are_checked(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        commands.filter(name, "x")


def test_filter_delete_sends_the_same_encoding() -> None:
    assert commands.filter("Caller-Caller-ID-Number", "+1") == (
        b"filter Caller-Caller-ID-Number /\\A\\+1\\z/i\n\n"
    )
    assert commands.filter_delete("Caller-Caller-ID-Number", "+1") == (
        b"filter delete Caller-Caller-ID-Number /\\A\\+1\\z/i\n\n"
    )
    assert commands.filter("Unique-ID", "abc-1") == b"filter Unique-ID abc-1\n\n"


def test_custom_subclasses_are_requested_after_custom() -> None:
    assert commands.event("SMS::SEND_MESSAGE", "CHANNEL_ANSWER") == (
        b"event plain CHANNEL_ANSWER CUSTOM SMS::SEND_MESSAGE\n\n"
    )
    assert commands.event("CUSTOM", "sofia::register", "CUSTOM") == (
        b"event plain CUSTOM sofia::register\n\n"
    )
    assert commands.event("CUSTOM") == b"event plain CUSTOM\n\n"


@pytest.mark.parametrize("build", [commands.api, commands.bgapi, commands.raw])
def test_nul_bytes_are_refused(build: object) -> None:
    with pytest.raises(LocalProtocolError, match="NUL"):
        build("status\x00 evil")  # type: ignore[operator]


def test_nul_in_headers_and_bodies_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="NUL"):
        commands.sendmsg([("execute-app-arg", "a\x00b")])
    with pytest.raises(LocalProtocolError, match="NUL"):
        commands.sendevent("CUSTOM", [], body=b"a\x00b")


@pytest.mark.parametrize("value", [" lead", "\tlead", "ARRAY::x"])
def test_header_values_freeswitch_would_rewrite_are_refused(value: str) -> None:
    with pytest.raises(LocalProtocolError):
        commands.sendevent("CUSTOM", [("X-Value", value)])


@pytest.mark.parametrize(
    ("arg", "headers", "body"),
    [
        ("tone_stream://%(100,0,440)", [("execute-app-arg", "tone_stream://%(100,0,440)")], None),
        (" leading", [("content-type", "text/plain")], " leading"),
        ("two\nlines", [("content-type", "text/plain")], "two\nlines"),
        (None, [], None),
    ],
)
def test_application_arguments(
    arg: str | None, headers: list[tuple[str, str]], body: str | None
) -> None:
    assert enc.app_arg_headers(arg) == (headers, body)


@pytest.mark.parametrize("arg", ["${system(id)}", "$${x}", "a\\\\b", "it\\'s", "\\$x"])
def test_application_arguments_expansion_would_rewrite_are_refused(arg: str) -> None:
    assert fs.triggers_expansion(arg) or "\\$" in arg
    with pytest.raises(LocalProtocolError, match="expand"):
        enc.app_arg_headers(arg)
    assert enc.app_arg_headers(arg, expand=True)[0]


@settings(max_examples=300)
@given(value=HOSTILE)
def test_application_words_decode_exactly_or_are_refused(value: str) -> None:
    try:
        word = enc.app_word(value, "word")
    except LocalProtocolError:
        return
    arg = f"1 {word} 2"
    assert not fs.triggers_expansion(arg) or "\\s" in word
    assert fs.separate_string(arg, " ", 11) == ["1", value, "2"]


@settings(max_examples=500)
@given(value=HOSTILE, specials=st.sampled_from(["", "'", "',", "'\"", ",|"]))
def test_escape_skips_its_loop_only_when_the_loop_would_change_nothing(
    value: str, specials: str
) -> None:
    # The fast path (nothing to escape: the value itself) against the per-character loop.
    assert enc._escape(value, specials) == enc._escape_each(value, specials)
