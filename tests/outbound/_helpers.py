"""Helpers for the outbound tests: a served Outbound and the task tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from genesis_trio import Outbound, Session
from genesis_trio.testing import FakeChannel, FakeFreeSWITCH
from outbound_serving import serving
from task_tree import all_tasks, tasks_under

__all__ = ["all_tasks", "serving", "session_call", "tasks_under"]


@asynccontextmanager
async def session_call(
    fake: FakeFreeSWITCH, **options: object
) -> AsyncIterator[tuple[Session, FakeChannel]]:
    """A call routed to an Outbound server; the test body plays the handler."""
    handed_over, sessions = trio.open_memory_channel[Session](1)
    release = trio.Event()

    async def handler(session: Session) -> None:
        await handed_over.send(session)
        await release.wait()

    app = Outbound(handler, port=0, **options)  # type: ignore[arg-type]
    async with serving(app) as address:
        far = await fake.call_socket(address)
        session = await sessions.receive()
        # The socket application parks a moment after connect (the session sees that
        # CHANNEL_PARK only if its myevents came first, as on a real switch): the test
        # starts once the far end is parked, so its durations are exact.
        await far.wait_parked()
        try:
            yield session, far
        finally:
            release.set()
