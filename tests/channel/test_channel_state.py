"""ChannelStatus and ChannelState: state from recorded FreeSWITCH events (synchronous)."""

from __future__ import annotations

from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from esl_captures import read_capture
from genesis_trio.channel._state import ChannelState, ChannelStatus, is_hangup
from genesis_trio.protocol import NEED_DATA, CommandReply, ESLParser, Event

A_LEG = "b557089b-0790-4637-a8f5-a6632ecf03e6"  # originated, bridged as A
C_LEG = "4fb84043-2e31-43fd-9665-1f43ee9dc994"  # originated, bridged as B, killed
OUTBOUND = "737e7aab-770e-4948-bd73-a8a2c25a23c7"


@cache
def messages(name: str) -> tuple[object, ...]:
    parser = ESLParser()
    parser.receive_data(read_capture(f"{name}.bin"))
    found = []
    while (message := parser.next_event()) is not NEED_DATA:
        found.append(message)
    return tuple(found)


def events(name: str) -> list[Event]:
    return [message for message in messages(name) if isinstance(message, Event)]


def follow(uuid: str, stream: list[Event], *, until: str | None = None) -> ChannelStatus:
    status = ChannelStatus(uuid)
    for event in stream:
        if event.unique_id == uuid:
            status.apply(event)
        elif event.get("Bridge-B-Unique-ID") == uuid:
            status.apply_peer_bridge(event)
        if until is not None and event.unique_id == uuid and event.name == until:
            break
    return status


def test_state_names_and_numbers() -> None:
    assert ChannelState.from_freeswitch("CS_EXECUTE") is ChannelState.EXECUTE
    assert ChannelState.from_freeswitch("REPORTING") is ChannelState.REPORTING
    assert ChannelState.from_freeswitch("CS_BOGUS") is None
    assert ChannelState.EXECUTE.freeswitch_name == "CS_EXECUTE"
    assert int(ChannelState.EXECUTE) == 4  # Channel-State-Number
    assert [s for s in ChannelState if s.ended] == [
        ChannelState.HANGUP,
        ChannelState.REPORTING,
        ChannelState.DESTROY,
    ]


def test_a_leg_through_answer_bridge_and_hangup() -> None:
    stream = events("inbound_plain_lifecycle")
    answered = follow(A_LEG, stream, until="CHANNEL_ANSWER")
    assert answered.answered
    assert answered.answer_state == "answered"
    assert not answered.hung_up
    assert "CHANNEL_PROGRESS_MEDIA" in answered.milestones

    bridged = follow(A_LEG, stream, until="CHANNEL_BRIDGE")
    assert bridged.bridged_to == C_LEG

    ended = follow(A_LEG, stream)
    assert ended.hung_up
    assert ended.hangup_cause == "NORMAL_CLEARING"
    assert ended.hangup_cause_q850 == 16
    assert ended.bridged_to is None
    assert ended.state is ChannelState.DESTROY
    assert set(ended.milestones) >= {"CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP"}


def test_an_older_event_arriving_late_does_not_move_the_state_back() -> None:
    """The real switch delivered a loopback leg's CHANNEL_ANSWER before its CHANNEL_CREATE."""
    stream = [event for event in events("inbound_plain_lifecycle") if event.unique_id == A_LEG]
    created = next(event for event in stream if event.name == "CHANNEL_CREATE")
    answered = next(event for event in stream if event.name == "CHANNEL_ANSWER")
    in_order = ChannelStatus(A_LEG)
    in_order.apply(created)
    in_order.apply(answered)
    reordered = ChannelStatus(A_LEG)
    reordered.apply(answered)
    reordered.apply(created)
    assert int(created["Event-Sequence"]) < int(answered["Event-Sequence"])
    assert (reordered.state, reordered.call_state, reordered.answer_state) == (
        in_order.state,
        in_order.call_state,
        in_order.answer_state,
    )
    assert reordered.answer_state == "answered"
    assert set(reordered.milestones) == {"CHANNEL_CREATE", "CHANNEL_ANSWER"}


def test_b_leg_learns_its_bridge_from_the_a_legs_event() -> None:
    stream = events("inbound_plain_lifecycle")
    status = ChannelStatus(C_LEG)
    for event in stream:
        if event.get("Bridge-B-Unique-ID") == C_LEG and event.name == "CHANNEL_BRIDGE":
            status.apply_peer_bridge(event)
            break
        if event.unique_id == C_LEG:
            status.apply(event)
    assert status.bridged_to == A_LEG


def test_outbound_session_from_connect_data_to_hangup() -> None:
    found = messages("outbound_session_plain")
    connect = found[0]
    assert isinstance(connect, CommandReply)
    assert connect.event is not None
    status = ChannelStatus(OUTBOUND)
    status.apply_snapshot(connect.event)
    assert status.state is ChannelState.EXECUTE
    assert status.answer_state == "ringing"
    assert not status.answered
    for event in events("outbound_session_plain"):
        was_hung_up = status.hung_up
        status.apply(event)
        if event.name == "CHANNEL_ANSWER":
            assert status.answered
        if event.name == "CHANNEL_HANGUP":
            assert not was_hung_up
            assert status.hung_up
    assert status.hangup_cause == "NORMAL_CLEARING"
    final: ChannelState = status.state
    assert final is ChannelState.REPORTING  # no CHANNEL_DESTROY on the socket


def test_snapshot_never_overrides_events() -> None:
    status = ChannelStatus("u1")
    status.apply(
        Event({"Event-Name": "CHANNEL_STATE", "Unique-ID": "u1", "Channel-State": "CS_PARK"})
    )
    status.apply_snapshot({"Unique-ID": "u1", "Channel-State": "CS_EXECUTE", "X": "1"})
    assert status.state is ChannelState.PARK
    assert status.data["X"] == "1"
    status.apply_snapshot({"Answer-State": "hangup", "Hangup-Cause": "USER_BUSY"})
    assert status.hung_up
    assert status.hangup_cause == "USER_BUSY"


def test_hangup_detection() -> None:
    assert is_hangup(Event({"Event-Name": "CHANNEL_HANGUP_COMPLETE"}))
    assert is_hangup(Event({"Event-Name": "CHANNEL_STATE", "Channel-State": "CS_REPORTING"}))
    assert is_hangup(Event({"Event-Name": "CHANNEL_UNPARK", "Answer-State": "hangup"}))
    assert not is_hangup(Event({"Event-Name": "CHANNEL_ANSWER", "Answer-State": "answered"}))


def lazy_events(name: str) -> list[Event]:
    """The capture's events as a connection holds them: undecoded until read."""
    parser = ESLParser(lazy_events=True)
    parser.receive_data(read_capture(f"{name}.bin"))
    found = []
    while (message := parser.next_event()) is not NEED_DATA:
        if isinstance(message, Event):
            found.append(message)
    return found


def merged_headers(uuid: str, stream: list[Event]) -> dict[str, str]:
    data: dict[str, str] = {}
    for event in stream:
        if event.unique_id == uuid:
            data.update(event.headers._first)
    return data


def test_following_a_channel_reads_only_the_headers_its_state_needs() -> None:
    stream = lazy_events("inbound_plain_lifecycle")
    for leg in (A_LEG, C_LEG):
        status = follow(leg, stream)
        assert status.hung_up
        assert status.hangup_cause_q850 == 16
        own = [event for event in stream if event.unique_id == leg]
        assert len(own) > 20
        # Nothing was decoded in full: the state came from single-header reads.
        assert all(event._headers is None for event in own)
        # Reading the data merges every event, in order, as a full decode would.
        assert status.data == merged_headers(leg, events("inbound_plain_lifecycle"))


def test_data_and_q850_are_the_same_however_many_events_wait_to_be_merged() -> None:
    status = ChannelStatus("u1")
    status.apply(
        Event(
            {
                "Event-Name": "CHANNEL_CREATE",
                "Unique-ID": "u1",
                "variable_hangup_cause_q850": "17",
                "X": "first",
            }
        )
    )
    for number in range(100):  # past the number of events held unmerged
        status.apply(Event({"Event-Name": "CHANNEL_STATE", "Unique-ID": "u1", "Y": str(number)}))
    status.apply(
        Event({"Event-Name": "CHANNEL_HANGUP", "Unique-ID": "u1", "Hangup-Cause": "USER_BUSY"})
    )
    # The hangup event carries no q850: the newest event that did says it.
    assert status.hangup_cause == "USER_BUSY"
    assert status.hangup_cause_q850 == 17
    assert status.data["X"] == "first"
    assert status.data["Y"] == "99"
    assert status.data["Event-Name"] == "CHANNEL_HANGUP"
    assert status.events_seen == 102


@given(
    name=st.one_of(
        st.sampled_from([state.name for state in ChannelState]).flatmap(
            lambda n: st.sampled_from([n, "CS_" + n, "CS_CS_" + n, n.lower(), "cs_" + n])
        ),
        st.text(max_size=12),
    )
)
def test_state_names_map_as_the_enum_members_say(name: str) -> None:
    # The lookup table against the enum itself.
    assert ChannelState.from_freeswitch(name) is ChannelState.__members__.get(
        name.removeprefix("CS_")
    )


class _ReadsEveryHangupHeader(ChannelStatus):
    """The plain implementation: every later hangup event's cause and Q.850 code are read."""

    __slots__ = ()

    def _apply_fields(self, name, state_name, call_state, answer_state, get):  # type: ignore[no-untyped-def]
        if state_name is not None:
            state = ChannelState.from_freeswitch(state_name)
            if state is not None:
                self.state = state
        if call_state is not None:
            self.call_state = call_state
        if answer_state is not None:
            self.answer_state = answer_state
            if answer_state == "answered":
                self.answered = True
        if (
            answer_state == "hangup"
            or state_name in ("CS_HANGUP", "CS_REPORTING", "CS_DESTROY")
            or name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY")
        ):
            if self.hung_up:
                self._note_hangup(get("Hangup-Cause"), get("variable_hangup_cause_q850"))
            else:
                self._mark_hung_up(get("Hangup-Cause"))


_HANGUP_STEP = st.fixed_dictionaries(
    {
        "Event-Name": st.sampled_from(
            ["CHANNEL_STATE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"]
        ),
    },
    optional={
        "Channel-State": st.sampled_from(["CS_EXECUTE", "CS_HANGUP", "CS_REPORTING"]),
        "Answer-State": st.sampled_from(["answered", "hangup"]),
        "Hangup-Cause": st.sampled_from(["", "NORMAL_CLEARING", "USER_BUSY"]),
        "variable_hangup_cause_q850": st.sampled_from(["16", "17", "x"]),
    },
)


@given(steps=st.lists(_HANGUP_STEP, max_size=8))
def test_later_hangup_events_give_what_reading_all_their_headers_gave(
    steps: list[dict[str, str]],
) -> None:
    """Once hung up, a later event's cause and Q.850 code are read only while unknown."""
    status, plain = ChannelStatus("u1"), _ReadsEveryHangupHeader("u1")
    for step in steps:
        for target in (status, plain):
            target.apply(Event({**step, "Unique-ID": "u1"}))
        assert (status.hung_up, status.hangup_cause, status.hangup_cause_q850) == (
            plain.hung_up,
            plain.hangup_cause,
            plain.hangup_cause_q850,
        )
        assert (status.state, status.bridged_to, status.park_event) == (
            plain.state,
            plain.bridged_to,
            plain.park_event,
        )
