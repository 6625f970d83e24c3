"""A live call to test channel operations on, over either kind of connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from genesis_trio import Channel, Inbound, Outbound, Session
from genesis_trio.testing import Destination, FakeChannel, FakeFreeSWITCH


@dataclass
class Call:
    """The library's view of a call (``channel``) and the fake switch's (``far``)."""

    channel: Channel
    far: FakeChannel
    session: Session | None = None


@asynccontextmanager
async def outbound_call(fake: FakeFreeSWITCH, **options: object) -> AsyncIterator[Call]:
    """A call routed to an Outbound server; the test body plays the handler."""
    handed_over, sessions = trio.open_memory_channel[Session](1)
    release = trio.Event()

    async def handler(session: Session) -> None:
        await handed_over.send(session)
        await release.wait()

    app = Outbound(handler, port=0, **options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        address = await nursery.start(app.serve)
        far = await fake.call_socket(address)
        session = await sessions.receive()
        # The socket application parks a moment after connect (the session sees that
        # CHANNEL_PARK only if its myevents came first, as on a real switch): the test
        # starts once the far end is parked, so its durations are exact.
        await far.wait_parked()
        try:
            yield Call(session.channel, far, session)
        finally:
            release.set()
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def inbound_call(fake: FakeFreeSWITCH, dial_path: str = "user/1000") -> AsyncIterator[Call]:
    """A call originated over an Inbound connection, answered and parked."""
    fake.add_destination(dial_path, Destination(answer_after=0))
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, dial_path)
        yield Call(channel, fake.channels[channel.uuid])


@asynccontextmanager
async def call_over(kind: str, fake: FakeFreeSWITCH) -> AsyncIterator[Call]:
    if kind == "outbound":
        async with outbound_call(fake) as call:
            yield call
    else:
        async with inbound_call(fake) as call:
            yield call
