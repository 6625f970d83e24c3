"""Dialplan applications a fake channel can execute.

Each application is an async function run in the channel's session (one at a
time, like FreeSWITCH's session thread). It returns the
``Application-Response`` of its ``CHANNEL_EXECUTE_COMPLETE``. A hangup cancels
the running application; the channel then reports its completion itself.

Media applications take the time :meth:`FakeFreeSWITCH.set_media_duration`
gives their file (1 s by default) and stop early on ``uuid_break``, as
FreeSWITCH's media loops do when they see the break flag.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from ..protocol import fsparse
from ._channel_core import ChannelHost
from ._channel_session import ChannelSession
from ._errors import MediaBroken

__all__ = ["APPLICATIONS", "Application"]

#: What an application drives: any channel, whatever switch it belongs to.
AppChannel = ChannelSession[ChannelHost]
AppRunner = Callable[[AppChannel, str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Application:
    run: AppRunner
    # What EXECUTE_COMPLETE says when a hangup interrupts the application.
    interrupted_response: str = "_none_"


async def _park(channel: AppChannel, data: str) -> str:
    return await channel.park()


async def _echo(channel: AppChannel, data: str) -> str:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


async def _answer(channel: AppChannel, data: str) -> str:
    channel.mark_answered()
    return "_none_"


async def _pre_answer(channel: AppChannel, data: str) -> str:
    channel.mark_pre_answered()
    return "_none_"


async def _ring_ready(channel: AppChannel, data: str) -> str:
    channel.mark_ring_ready()
    return "_none_"


async def _sleep(channel: AppChannel, data: str) -> str:
    milliseconds = int(data) if data.strip().isdigit() else 0
    await channel.play_media(milliseconds / 1000)
    return "_none_"


async def _hangup(channel: AppChannel, data: str) -> str:
    channel.request_hangup(data or "NORMAL_CLEARING")
    await anyio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


async def _set(channel: AppChannel, data: str) -> str:
    name, _, value = data.partition("=")
    if name:
        channel.variables[name] = value
    return "_none_"


def _file_type(path: str) -> str:
    scheme, separator, _ = path.partition("://")
    return scheme if separator else "file"


async def _playback(channel: AppChannel, data: str) -> str:
    path = data  # playback takes its argument whole
    headers = [("Playback-File-Type", _file_type(path)), ("Playback-File-Path", path)]
    channel.emit("PLAYBACK_START", after=headers)
    started = anyio.current_time()
    outcome = "hangup"
    try:
        outcome = await channel.play_media(channel.host.media_duration(path))
    finally:
        # A hangup (which cancels the application) still stops the file: the events
        # and variables follow, as on FreeSWITCH.
        played_ms = int((anyio.current_time() - started) * 1000)
        channel.variables["playback_last_offset_pos"] = str(played_ms * 8)
        channel.variables["playback_seconds"] = str(played_ms // 1000)
        channel.variables["playback_ms"] = str(played_ms)
        channel.variables["playback_samples"] = str(played_ms * 8)
        status = "break" if outcome == "broken" else "done"
        channel.emit("PLAYBACK_STOP", after=[*headers, ("Playback-Status", status)])
    # FreeSWITCH reports a broken playback as played too.
    return "FILE PLAYED"


async def _say(channel: AppChannel, data: str) -> str:
    # mod_dptools: "module type method [gender] text", split on spaces (at most 5).
    words = fsparse.separate_string(data, " ", 5)
    if len(words) in (4, 5):
        channel.said.append(words[-1])
    await channel.play_media(channel.host.media_duration(f"say:{data.strip()}"))
    return "_none_"


async def _send_dtmf(channel: AppChannel, data: str) -> str:
    channel.dtmf_sent.append(data.strip())
    return "_none_"


async def _record(channel: AppChannel, data: str) -> str:
    words = fsparse.separate_string(data, " ", 4)
    path = words[0] if words else ""
    limit = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
    channel.emit("RECORD_START", after=[("Record-File-Path", path)])
    started = anyio.current_time()
    # No limit: record until stopped (uuid_break) or the hangup.
    await channel.play_media(float(limit) if limit else None)
    recorded_ms = int((anyio.current_time() - started) * 1000)
    channel.variables["record_ms"] = str(recorded_ms)
    channel.variables["record_seconds"] = str(recorded_ms // 1000)
    channel.emit("RECORD_STOP", after=[("Record-File-Path", path)])
    return "_none_"


async def _play_and_get_digits(channel: AppChannel, data: str) -> str:
    """``min max tries timeout terminators file invalid_file var regexp [digit_timeout]``."""
    words = fsparse.separate_string(data, " ", 11)
    if len(words) < 6:
        return "_none_"
    minimum, maximum, tries = (int(word) for word in words[:3])
    first_timeout = int(words[3]) / 1000
    terminators = "" if words[4] == "none" else words[4]
    prompt = words[5]
    invalid = words[6] if len(words) > 6 else ""
    variable = words[7] if len(words) > 7 else ""
    pattern = words[8] if len(words) > 8 else ""
    digit_timeout = int(words[9]) / 1000 if len(words) > 9 else first_timeout
    for _ in range(max(1, tries)):
        outcome = await channel.play_media(channel.host.media_duration(prompt), until_dtmf=True)
        if outcome == "broken":
            break
        digits = ""
        timeout = first_timeout
        try:
            while len(digits) < maximum:
                digit = await channel.next_dtmf(timeout)
                if digit is None or digit in terminators:
                    break
                digits += digit
                timeout = digit_timeout
        except MediaBroken:
            break
        matches = not digits or not pattern or re.search(pattern, digits) is not None
        if len(digits) >= minimum and (digits or minimum == 0) and matches:
            if variable:
                channel.variables[variable] = digits
            channel.variables["read_result"] = "success"
            return "_none_"
        if invalid and invalid != "silence_stream://0":
            await channel.play_media(channel.host.media_duration(invalid))
    channel.variables["read_result"] = "failure"
    if variable:
        channel.variables.pop(variable, None)
    return "_none_"


APPLICATIONS: dict[str, Application] = {
    "park": Application(_park),
    "echo": Application(_echo),
    "answer": Application(_answer),
    "pre_answer": Application(_pre_answer),
    "ring_ready": Application(_ring_ready),
    "sleep": Application(_sleep),
    "hangup": Application(_hangup),
    "set": Application(_set),
    "playback": Application(_playback, interrupted_response="PLAYBACK ERROR"),
    "say": Application(_say),
    "send_dtmf": Application(_send_dtmf),
    "record": Application(_record),
    "play_and_get_digits": Application(_play_and_get_digits),
}
