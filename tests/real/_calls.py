"""Calls placed on the real switch by plain ``api originate``, for tests of the inbound
surface that must not depend on :class:`~genesis_trio.Channel`."""

from __future__ import annotations

import contextlib
import uuid as uuid_module
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import trio

from genesis_trio import ConnectionLost, Inbound, Subscription
from genesis_trio.protocol import Event

__all__ = ["next_matching", "parked_call"]


@asynccontextmanager
async def parked_call(
    client: Inbound,
    extension: str = "9002",
    variables: Mapping[str, str] | None = None,
    *,
    cause: str = "NORMAL_CLEARING",
    uuid: str | None = None,
) -> AsyncIterator[str]:
    """A loopback call whose a-leg is parked; yields the a-leg's uuid, killed on the way out.

    Variable values must not hold commas or quotes: this is plain originate syntax
    (a value with spaces is single-quoted).
    """
    uuid = uuid or str(uuid_module.uuid4())
    # The switch splits originate's arguments at spaces unless they are quoted.
    pairs = ",".join(
        f"{k}='{v}'" if " " in v else f"{k}={v}"
        for k, v in {"origination_uuid": uuid, **(variables or {})}.items()
    )
    reply = await client.api(f"originate {{{pairs}}}loopback/{extension}/default &park")
    assert reply.strip() == f"+OK {uuid}", reply
    try:
        yield uuid
    finally:
        # If the switch or the connection is gone, so is the call.
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(10),
            contextlib.suppress(ConnectionLost),
        ):
            await client.api(f"uuid_kill {uuid} {cause}", check=False)


async def next_matching(events: Subscription[Event], name: str, uuid: str | None = None) -> Event:
    """The next event named ``name`` (of channel ``uuid`` if given), skipping the others."""
    async for event in events:
        if event.name == name and (uuid is None or event.unique_id == uuid):
            return event
    raise AssertionError(f"the subscription ended before {name}")


async def first_of_each(events: Subscription[Event], uuid: str, *names: str) -> dict[str, Event]:
    """The first event of each of ``names`` for channel ``uuid``, whatever their order.

    The switch fires a call's events from several threads, and its event queue does not
    keep them in causal order: a loopback leg's CHANNEL_ANSWER was seen before its
    CHANNEL_CREATE.
    """
    found: dict[str, Event] = {}
    async for event in events:
        if event.unique_id == uuid and event.name in names and event.name not in found:
            found[event.name] = event
            if len(found) == len(names):
                return found
    raise AssertionError(f"the subscription ended with only {sorted(found)} of {names}")
