"""Recorded FreeSWITCH events shipped with the package (the benchmark source)."""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources

from ..protocol import NEED_DATA, ESLParser, Event, EventFormat

__all__ = ["captured_events"]

_FILES: dict[EventFormat, str] = {
    "plain": "inbound_plain_lifecycle.bin.gz",
    "json": "inbound_json_lifecycle.bin.gz",
    "xml": "inbound_xml_lifecycle.bin.gz",
}


def captured_events(format: EventFormat = "plain") -> list[Event]:
    """The events a real FreeSWITCH 1.11 sent for a two-call lifecycle.

    137 events (138 in json) from ``event <format> ALL`` during: two
    ``bgapi originate`` to loopback extensions (ring, early media, answer,
    playback, park), a ``uuid_broadcast``, a ``uuid_bridge`` and a
    ``uuid_kill``: CHANNEL_*, CODEC, API, CALL_UPDATE, PLAYBACK_*,
    BACKGROUND_JOB... A fresh list each call; the events are immutable.
    """
    if format not in _FILES:
        raise ValueError(f"unknown event format {format!r} (plain, json or xml)")
    return list(_load(format))


@cache
def _load(event_format: EventFormat) -> tuple[Event, ...]:
    package = resources.files("genesis_trio.testing")
    data = package.joinpath("data", _FILES[event_format]).read_bytes()
    parser = ESLParser()
    parser.receive_data(gzip.decompress(data))
    events: list[Event] = []
    while True:
        message = parser.next_event()
        if message is NEED_DATA:
            break
        if isinstance(message, Event):
            events.append(message)
    return tuple(events)
