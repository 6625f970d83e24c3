"""Every recorded FreeSWITCH stream frames exactly as its README describes,
however the bytes are split between reads."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesis_trio.protocol import Message

from ._captures import (
    capture_bytes,
    capture_messages,
    parse_chunks,
    received_capture_names,
)

# Expected frames per capture, derived by hand from captures/README.txt (and the
# commands in NAME.sent.bin). Every inbound session: 1 auth/request greeting, one
# command/reply per command sent (auth included), one api/response per `api`,
# the events, and the final text/disconnect-notice after "exit" -> "+OK bye".
# Keys are the message classes the parser yields.
EXPECTED_FRAMES: dict[str, dict[str, int]] = {
    # greeting + replies(auth, exit) + 2 api responses (status, version) + notice = 6
    "inbound_auth_ok_api_status": {
        "AuthRequest": 1,
        "CommandReply": 2,
        "ApiResponse": 2,
        "DisconnectNotice": 1,
    },
    # greeting + reply "-ERR invalid" + notice = 3 (no exit sent)
    "inbound_auth_wrong_password": {"AuthRequest": 1, "CommandReply": 1, "DisconnectNotice": 1},
    # greeting + replies(auth, exit) + notice = 4
    "inbound_exit_disconnect_notice": {"AuthRequest": 1, "CommandReply": 2, "DisconnectNotice": 1},
    # greeting + replies(auth, nosuchcommand, event, filter, exit) + 3 api -ERR + notice = 10
    "inbound_errors": {
        "AuthRequest": 1,
        "CommandReply": 5,
        "ApiResponse": 3,
        "DisconnectNotice": 1,
    },
    # greeting + replies(auth, event, 3x bgapi, exit) + 3 BACKGROUND_JOB + notice = 11
    "inbound_bgapi_background_job": {
        "AuthRequest": 1,
        "CommandReply": 6,
        "Event": 3,
        "DisconnectNotice": 1,
    },
    # greeting + replies(auth, log, nolog, exit) + 2 api (reloadxml, log) + 3 log/data
    # + notice = 11
    "inbound_log": {
        "AuthRequest": 1,
        "CommandReply": 4,
        "ApiResponse": 2,
        "LogData": 3,
        "DisconnectNotice": 1,
    },
    # greeting + replies(auth, event plain, sendevent, noevents, event json, sendevent, exit)
    # + 2 CUSTOM events (one plain, one json) + notice = 11
    "inbound_sendevent_custom": {
        "AuthRequest": 1,
        "CommandReply": 7,
        "Event": 2,
        "DisconnectNotice": 1,
    },
    # greeting + replies(auth, event, 2x bgapi, noevents, exit) + 137 events
    # + 3 api (uuid_broadcast, uuid_bridge, uuid_kill) + notice = 148
    "inbound_plain_lifecycle": {
        "AuthRequest": 1,
        "CommandReply": 6,
        "Event": 137,
        "ApiResponse": 3,
        "DisconnectNotice": 1,
    },
    # as plain, with the README's 138 text/event-json frames = 149
    "inbound_json_lifecycle": {
        "AuthRequest": 1,
        "CommandReply": 6,
        "Event": 138,
        "ApiResponse": 3,
        "DisconnectNotice": 1,
    },
    # as plain, with the README's 137 text/event-xml frames = 148
    "inbound_xml_lifecycle": {
        "AuthRequest": 1,
        "CommandReply": 6,
        "Event": 137,
        "ApiResponse": 3,
        "DisconnectNotice": 1,
    },
    # greeting + replies(auth, event, noevents, exit) + events + notice. The README
    # gives no event count for the SIP call: 29 is `grep -c "Content-Type: text/event-"`
    # on the raw bytes (the test below re-derives that count independently).
    "inbound_plain_sipp_call": {
        "AuthRequest": 1,
        "CommandReply": 4,
        "Event": 29,
        "DisconnectNotice": 1,
    },
    # control connections: greeting + replies(auth, bgapi, exit) + notice = 5
    "outbound_plain_control": {"AuthRequest": 1, "CommandReply": 3, "DisconnectNotice": 1},
    "outbound_json_control": {"AuthRequest": 1, "CommandReply": 3, "DisconnectNotice": 1},
    # no greeting; replies(connect, myevents, linger, 3x sendmsg, exit) + 1 api (uuid_getvar)
    # + 12 events (grep count, not in the README) + linger notice + disconnect notice = 22
    "outbound_session_plain": {
        "CommandReply": 7,
        "ApiResponse": 1,
        "Event": 12,
        "DisconnectNotice": 2,
    },
    # as plain but no exit sent (the switch ends the 2 s linger itself): 6 replies = 21
    "outbound_session_json": {
        "CommandReply": 6,
        "ApiResponse": 1,
        "Event": 12,
        "DisconnectNotice": 2,
    },
}

CAPTURE_NAMES = sorted(EXPECTED_FRAMES)


def _kinds(messages: Sequence[Message]) -> dict[str, int]:
    return dict(Counter(type(message).__name__ for message in messages))


def test_expected_table_covers_every_capture() -> None:
    names = received_capture_names()
    assert names == CAPTURE_NAMES


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_capture_parses_whole_into_the_expected_frames(name: str) -> None:
    messages = capture_messages(name)
    assert _kinds(messages) == EXPECTED_FRAMES[name]
    assert len(messages) == sum(EXPECTED_FRAMES[name].values())


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_event_count_matches_the_raw_content_types(name: str) -> None:
    # Independent of the parser: each event frame carries exactly one outer
    # "Content-Type: text/event-*" line (plain event bodies have no Content-Type).
    data = capture_bytes(name)
    assert data.count(b"Content-Type: text/event-") == EXPECTED_FRAMES[name].get("Event", 0)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_capture_fed_one_byte_at_a_time(name: str) -> None:
    data = capture_bytes(name)
    messages = parse_chunks(data[index : index + 1] for index in range(len(data)))
    assert messages == list(capture_messages(name))


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    # An empty read means EOF to the parser, so a transport never hands one over.
    return [data[start:end] for start, end in itertools.pairwise(bounds) if end > start]


@pytest.mark.parametrize("name", CAPTURE_NAMES)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_capture_fed_in_random_splits(name: str, data: st.DataObject) -> None:
    raw = capture_bytes(name)
    cuts = data.draw(
        st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=300), label="cuts"
    )
    chunks = _split(raw, cuts)
    assert b"".join(chunks) == raw
    assert parse_chunks(chunks) == list(capture_messages(name))
