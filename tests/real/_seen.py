"""Events collected by handlers, and a way to wait for one of them."""

from __future__ import annotations

from collections.abc import Callable

import trio

from genesis_trio import Event

__all__ = ["Seen"]


class Seen:
    """A handler's record of events: ``add`` is the handler, ``wait_for`` waits for a match."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = trio.Event()

    def add(self, event: Event) -> None:
        self.events.append(event)
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def handle(self, event: Event) -> None:
        """``add`` as a handler: async, so it runs on the loop (a plain ``def`` handler
        runs in a worker thread, where setting a trio.Event is not allowed)."""
        self.add(event)

    async def wait_for(self, predicate: Callable[[Event], bool]) -> Event:
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            await self._changed.wait()

    def matching(self, predicate: Callable[[Event], bool]) -> list[Event]:
        return [event for event in self.events if predicate(event)]
