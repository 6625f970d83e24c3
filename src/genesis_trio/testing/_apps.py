"""Dialplan applications a fake channel can execute.

Each application is an async function run in the channel's session (one at a
time, like FreeSWITCH's session thread). It returns the
``Application-Response`` of its ``CHANNEL_EXECUTE_COMPLETE``. A hangup cancels
the running application; the channel then reports its completion itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ._channels import FakeChannel

__all__ = ["APPLICATIONS", "Application"]

AppRunner = Callable[["FakeChannel", str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Application:
    run: AppRunner
    # What EXECUTE_COMPLETE says when a hangup interrupts the application.
    interrupted_response: str = "_none_"


async def _park(channel: FakeChannel, data: str) -> str:
    channel.enter_park()
    await anyio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


async def _echo(channel: FakeChannel, data: str) -> str:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


async def _answer(channel: FakeChannel, data: str) -> str:
    channel.mark_answered()
    return "_none_"


async def _pre_answer(channel: FakeChannel, data: str) -> str:
    channel.mark_pre_answered()
    return "_none_"


async def _sleep(channel: FakeChannel, data: str) -> str:
    milliseconds = int(data) if data.strip().isdigit() else 0
    await anyio.sleep(milliseconds / 1000)
    return "_none_"


async def _hangup(channel: FakeChannel, data: str) -> str:
    channel.request_hangup(data or "NORMAL_CLEARING")
    await anyio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


async def _set(channel: FakeChannel, data: str) -> str:
    name, _, value = data.partition("=")
    if name:
        channel.variables[name] = value
    return "_none_"


APPLICATIONS: dict[str, Application] = {
    "park": Application(_park),
    "echo": Application(_echo),
    "answer": Application(_answer),
    "pre_answer": Application(_pre_answer),
    "sleep": Application(_sleep),
    "hangup": Application(_hangup),
    "set": Application(_set),
}
