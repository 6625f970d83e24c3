"""Runs an Outbound server for the length of a block, on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from genesis_trio import Outbound


@asynccontextmanager
async def serving(app: Outbound) -> AsyncIterator[tuple[str, int]]:
    """Run ``app`` until the block ends; yields the address it listens on."""
    async with trio.open_nursery() as nursery:
        address: tuple[str, int] = await nursery.start(app.serve)
        try:
            yield address
        finally:
            nursery.cancel_scope.cancel()
