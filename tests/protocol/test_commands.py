"""Command builders: exact bytes, round trips, and refusal of injected newlines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import LocalProtocolError, ProtocolError, commands

from ._captures import sent_bytes


@dataclass
class ReadCommand:
    line: str
    headers: list[tuple[str, str]]
    body: bytes | None


def read_commands(data: bytes) -> list[ReadCommand]:
    """A minimal reader of the client->switch direction, written independently
    of the builders: a command line, "Name: value" lines, a blank line, then a
    Content-Length body."""
    found: list[ReadCommand] = []
    position = 0
    while position < len(data):
        end = data.index(b"\n\n", position)
        line, *header_lines = data[position:end].decode("utf-8").split("\n")
        position = end + 2
        headers: list[tuple[str, str]] = []
        for header_line in header_lines:
            name, separator, value = header_line.partition(": ")
            assert separator, header_line
            headers.append((name, value))
        body: bytes | None = None
        lengths = [value for name, value in headers if name == "Content-Length"]
        if lengths:
            assert len(lengths) == 1
            body = data[position : position + int(lengths[0])]
            assert len(body) == int(lengths[0])
            position += len(body)
            headers = [(name, value) for name, value in headers if name != "Content-Length"]
        found.append(ReadCommand(line, headers, body))
    return found


def read_one(data: bytes) -> ReadCommand:
    (command,) = read_commands(data)
    return command


# --- exact bytes, checked against what the capture script sent ----------------------


def test_simple_commands_match_the_recorded_client_bytes() -> None:
    built = b"".join(
        [
            commands.auth("ClueCon"),
            commands.api("status"),
            commands.api("version"),
            commands.exit(),
        ]
    )
    assert built == sent_bytes("inbound_auth_ok_api_status")


def test_event_log_and_bgapi_commands_match_the_recorded_client_bytes() -> None:
    assert b"".join(
        [
            commands.auth("ClueCon"),
            commands.log(7),
            commands.api("reloadxml"),
            commands.api("log INFO esl capture test line"),
            commands.nolog(),
            commands.exit(),
        ]
    ) == sent_bytes("inbound_log")
    assert b"".join(
        [
            commands.auth("ClueCon"),
            commands.event("BACKGROUND_JOB"),
            commands.bgapi("status"),
            commands.bgapi("version", job_uuid="8e50ea59-5325-485e-9d51-9a14a0153c26"),
            commands.bgapi("nosuchcommand"),
            commands.exit(),
        ]
    ) == sent_bytes("inbound_bgapi_background_job")


def test_sendevent_matches_the_recorded_client_bytes() -> None:
    built = b"".join(
        [
            commands.auth("ClueCon"),
            commands.event("CUSTOM", "esl::test"),
            commands.sendevent(
                "CUSTOM",
                [
                    ("Event-Subclass", "esl::test"),
                    ("X-Test-Header", "value with spaces & symbols=%"),
                ],
                body="hello from sendevent\nsecond line\n",
            ),
            commands.noevents(),
            commands.event("CUSTOM", "esl::test", event_format="json"),
            commands.sendevent(
                "CUSTOM", {"Event-Subclass": "esl::test", "X-Test-Header": "json variant"}
            ),
            commands.exit(),
        ]
    )
    assert built == sent_bytes("inbound_sendevent_custom")


def test_outbound_session_commands_match_the_recorded_client_bytes() -> None:
    built = b"".join(
        [
            commands.connect(),
            commands.myevents(),
            commands.linger(),
            commands.sendmsg(
                [
                    ("call-command", "execute"),
                    ("execute-app-name", "answer"),
                    ("Event-UUID", "f1193c85-5653-42e3-9aba-27e5cb2cea04"),
                ]
            ),
            commands.sendmsg(
                [
                    ("call-command", "execute"),
                    ("execute-app-name", "playback"),
                    ("execute-app-arg", "tone_stream://%(500,100,440,480);loops=2"),
                    ("Event-UUID", "ffdfe7e5-a4b2-4a8a-bf4e-6f9a83b2744a"),
                ]
            ),
            commands.api("uuid_getvar 737e7aab-770e-4948-bd73-a8a2c25a23c7 destination_number"),
            commands.sendmsg([("call-command", "hangup"), ("hangup-cause", "NORMAL_CLEARING")]),
            commands.exit(),
        ]
    )
    # The builder always names the format; "myevents plain" is what bare "myevents" means.
    recorded = sent_bytes("outbound_session_plain").replace(b"myevents\n", b"myevents plain\n")
    assert built == recorded
    assert commands.myevents(event_format="json") == b"myevents json\n\n"
    assert commands.linger(2) == b"linger 2\n\n"


def test_every_simple_builder() -> None:
    assert commands.event() == b"event plain ALL\n\n"
    assert commands.event("CHANNEL_ANSWER", "CHANNEL_HANGUP", event_format="xml") == (
        b"event xml CHANNEL_ANSWER CHANNEL_HANGUP\n\n"
    )
    assert commands.nixevent("CHANNEL_ANSWER") == b"nixevent CHANNEL_ANSWER\n\n"
    assert commands.noevents() == b"noevents\n\n"
    assert commands.myevents("abc") == b"myevents abc plain\n\n"
    assert commands.filter("Unique-ID", "abc") == b"filter Unique-ID abc\n\n"
    assert commands.filter_delete("Unique-ID") == b"filter delete Unique-ID\n\n"
    assert commands.filter_delete("Unique-ID", "abc") == b"filter delete Unique-ID abc\n\n"
    assert commands.divert_events(True) == b"divert_events on\n\n"
    assert commands.divert_events(False) == b"divert_events off\n\n"
    assert commands.nolinger() == b"nolinger\n\n"
    assert commands.resume() == b"resume\n\n"
    assert commands.raw("uuid_dump x") == b"uuid_dump x\n\n"
    assert commands.userauth("1000@default", "pw") == b"userauth 1000@default:pw\n\n"
    assert commands.sendmsg([("call-command", "hangup")], uuid="u-1") == (
        b"sendmsg u-1\ncall-command: hangup\n\n"
    )


def test_builders_refuse_invalid_arguments() -> None:
    invalid: list[Callable[[], bytes]] = [
        lambda: commands.raw(""),
        lambda: commands.raw("   "),
        lambda: commands.event("ALL", event_format="yaml"),  # type: ignore[arg-type]
        lambda: commands.event("TWO WORDS"),
        lambda: commands.event(""),
        lambda: commands.nixevent(),
        lambda: commands.linger(-1),
        lambda: commands.sendevent("CUSTOM", [("Content-Length", "3")], body="abc"),
        lambda: commands.sendmsg([("content-length", "3")]),
        lambda: commands.sendmsg([("", "value")]),
        lambda: commands.sendmsg([("Name: x", "value")]),
        lambda: commands.sendmsg([(" padded", "value")]),
        lambda: commands.filter("", "value"),
    ]
    for build in invalid:
        with pytest.raises(LocalProtocolError):
            build()


# --- round trips ---------------------------------------------------------------------

# Header names as a caller would write them: no separator, no surrounding space.
safe_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n:\x00"),
    min_size=1,
    max_size=30,
).filter(lambda name: name == name.strip() and name.lower() != "content-length")
# Values FreeSWITCH stores as given: no NUL, no leading blank (dropped after
# the colon), no ARRAY:: prefix (read as an array).
safe_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    max_size=60,
).filter(lambda value: not value.startswith((" ", "\t", "ARRAY::")))
header_lists = st.lists(st.tuples(safe_names, safe_values), max_size=8)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=300).filter(lambda data: b"\x00" not in data),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=200),
)
event_names = st.from_regex(r"\A[A-Z][A-Z_]{0,20}\Z")
uuids = st.uuids().map(str)


def _body_bytes(body: bytes | str | None) -> bytes | None:
    return body.encode("utf-8") if isinstance(body, str) else body


@settings(max_examples=200)
@given(name=event_names, headers=header_lists, body=bodies)
def test_sendevent_round_trips(
    name: str, headers: list[tuple[str, str]], body: bytes | str | None
) -> None:
    command = read_one(commands.sendevent(name, headers, body))
    assert command.line == f"sendevent {name}"
    assert command.headers == headers
    assert command.body == _body_bytes(body)


@settings(max_examples=200)
@given(headers=header_lists, uuid=st.one_of(st.none(), uuids), body=bodies)
def test_sendmsg_round_trips(
    headers: list[tuple[str, str]], uuid: str | None, body: bytes | str | None
) -> None:
    command = read_one(commands.sendmsg(headers, uuid=uuid, body=body))
    assert command.line == ("sendmsg" if uuid is None else f"sendmsg {uuid}")
    assert command.headers == headers
    assert command.body == _body_bytes(body)


@settings(max_examples=100)
@given(
    messages=st.lists(
        st.tuples(header_lists, st.one_of(st.none(), uuids), bodies), min_size=1, max_size=5
    )
)
def test_a_stream_of_commands_reads_back_command_by_command(
    messages: list[tuple[list[tuple[str, str]], str | None, bytes | str | None]],
) -> None:
    stream = b"".join(
        commands.sendmsg(headers, uuid=uuid, body=body) for headers, uuid, body in messages
    )
    read = read_commands(stream)
    assert [(c.headers, c.body) for c in read] == [(h, _body_bytes(b)) for h, _, b in messages]


@given(command=safe_values.filter(lambda text: text.strip() != ""))
def test_api_and_bgapi_round_trip(command: str) -> None:
    assert read_one(commands.api(command)) == ReadCommand(f"api {command}", [], None)
    assert read_one(commands.bgapi(command)) == ReadCommand(f"bgapi {command}", [], None)


@given(command=safe_values, job_uuid=uuids)
def test_bgapi_with_job_uuid_round_trips(command: str, job_uuid: str) -> None:
    assert read_one(commands.bgapi(command, job_uuid=job_uuid)) == ReadCommand(
        f"bgapi {command}", [("Job-UUID", job_uuid)], None
    )


# --- injection -----------------------------------------------------------------------

newlines = st.sampled_from(["\n", "\r", "\r\n", "\n\n"])


@st.composite
def with_newline(draw: st.DrawFn) -> str:
    """Text with a newline or carriage return somewhere in it."""
    prefix = draw(st.text(max_size=20))
    suffix = draw(st.text(max_size=20))
    return prefix + draw(newlines) + suffix


def _injectable_builders(tainted: str) -> list[Callable[[], bytes]]:
    """Every way a caller can put text into a command line or header."""
    return [
        lambda: commands.raw(tainted),
        lambda: commands.api(tainted),
        lambda: commands.bgapi(tainted),
        lambda: commands.bgapi("status", job_uuid=tainted),
        lambda: commands.auth(tainted),
        lambda: commands.userauth(tainted, "pw"),
        lambda: commands.userauth("1000", tainted),
        lambda: commands.event(tainted),
        lambda: commands.nixevent(tainted),
        lambda: commands.myevents(tainted),
        lambda: commands.filter(tainted, "value"),
        lambda: commands.filter("Unique-ID", tainted),
        lambda: commands.filter_delete(tainted),
        lambda: commands.filter_delete("Unique-ID", tainted),
        lambda: commands.log(tainted),
        lambda: commands.sendevent(tainted),
        lambda: commands.sendevent("CUSTOM", [(tainted, "value")]),
        lambda: commands.sendevent("CUSTOM", [("X-Header", tainted)]),
        lambda: commands.sendevent("CUSTOM", {"X-Header": tainted}, body="fine\n\nbody"),
        lambda: commands.sendmsg([(tainted, "value")]),
        lambda: commands.sendmsg([("call-command", "execute"), ("execute-app-arg", tainted)]),
        lambda: commands.sendmsg([("call-command", "hangup")], uuid=tainted),
    ]


@settings(max_examples=50)
@given(tainted=with_newline())
def test_a_newline_anywhere_is_refused_before_any_bytes_exist(tainted: str) -> None:
    for build in _injectable_builders(tainted):
        produced: bytes | None = None
        with pytest.raises(LocalProtocolError) as raised:
            produced = build()
        assert produced is None
        assert isinstance(raised.value, ProtocolError)
        assert isinstance(raised.value, ValueError)


@given(headers=header_lists, body=st.binary(max_size=200).filter(lambda b: b"\x00" not in b))
def test_bodies_may_contain_anything(headers: list[tuple[str, str]], body: bytes) -> None:
    # Bodies are length-delimited: blank lines in them cannot start a new command.
    # (Anything but NUL: mod_event_socket copies the body as a C string.)
    body = body + b"\n\nexit\n\n"
    command = read_one(commands.sendmsg(headers, body=body))
    assert command.body == body
