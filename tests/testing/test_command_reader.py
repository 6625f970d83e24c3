"""The client-command reader, synchronously and under arbitrary chunking."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genesis_trio._exceptions import RemoteProtocolError
from genesis_trio.testing._command_reader import MAX_COMMAND_SIZE, Command, CommandReader

STREAM = (
    b"auth ClueCon\n\n"
    b"\r\n"
    b"bgapi version\nJob-UUID: 8e50ea59\n\n"
    b"sendevent CUSTOM\r\nEvent-Subclass: esl::test\r\nContent-Length: 5\r\n\r\nhi\nx!"
    b"exit\n\n"
)
EXPECTED = [
    Command("auth ClueCon"),
    Command("bgapi version", (("Job-UUID", "8e50ea59"),)),
    Command(
        "sendevent CUSTOM",
        (("Event-Subclass", "esl::test"), ("Content-Length", "5")),
        "hi\nx!",
    ),
    Command("exit"),
]


def read_all(chunks: list[bytes]) -> list[Command]:
    reader = CommandReader()
    commands: list[Command] = []
    for chunk in chunks:
        reader.feed(chunk)
        while (command := reader.next_command()) is not None:
            commands.append(command)
    return commands


def test_reads_commands_headers_and_bodies() -> None:
    assert read_all([STREAM]) == EXPECTED
    assert EXPECTED[1].header("job-uuid") == "8e50ea59"
    assert EXPECTED[1].header("Missing") is None


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_commands(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[start:end] for start, end in itertools.pairwise(points)]
    assert read_all(chunks) == EXPECTED


def test_incomplete_command_waits_for_more() -> None:
    reader = CommandReader()
    reader.feed(b"api status\n")
    assert reader.next_command() is None
    reader.feed(b"\n")
    assert reader.next_command() == Command("api status")


def test_oversized_header_block_is_refused() -> None:
    reader = CommandReader()
    reader.feed(b"x" * (MAX_COMMAND_SIZE + 1))
    with pytest.raises(RemoteProtocolError):
        reader.next_command()


def test_oversized_body_is_refused() -> None:
    reader = CommandReader()
    reader.feed(b"sendevent X\nContent-Length: %d\n\n" % (MAX_COMMAND_SIZE + 1))
    with pytest.raises(RemoteProtocolError):
        reader.next_command()
