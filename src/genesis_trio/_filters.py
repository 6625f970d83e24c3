"""The FreeSWITCH-side event filters of one connection: the user's, and the library's own.

mod_event_socket keeps one list of filters per connection. While the list is
empty every subscribed event is sent; once it holds anything, an event is sent
only if some filter matches it (a header of the event equal to the filter's
value, compared case-insensitively; a ``-`` filter that matches vetoes). The
filters are OR'ed, so the library keeps its own events flowing by adding exact
filters of its own next to the user's: ``Job-UUID <uuid>`` for each bgapi job
it waits for, ``Unique-ID <uuid>`` for each channel it follows. Those exist on
the switch only while the user has filters (alone, they would restrict), and
they go in before the user's first filter, so no event the library waits for
is ever filtered out, whatever the order of calls.

``filter delete <header> <value>`` removes every entry of that pair (header
name compared case-insensitively, value exactly), so one pair is one entry
here, shared by the user and the library: it leaves the switch only when
neither needs it. Deleting the user's last filter sends ``filter delete all``,
which empties the list in one step (two deletes would let the library's
filters alone restrict the stream in between).

All changes on the switch are made by tasks of the connection's task group,
one at a time: a caller's cancellation can never leave this bookkeeping
unsure of what the switch holds, and releasing a filter never makes anyone
wait. The state lives and dies with one connection: a new connection starts
from an empty list, as FreeSWITCH's does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from ._exceptions import CommandError, CommandStage, ConnectionLost, GenesisError
from ._stream import ESLConnection
from ._util import logger
from .protocol import CommandReply
from .protocol import commands as cmd

__all__ = ["SwitchFilters"]

# (header name lower-cased, value): FreeSWITCH's identity of a filter entry.
_Key = tuple[str, str]

_Send = Callable[[bytes, str], Awaitable[CommandReply]]


@dataclass(eq=False)
class _Round:
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class SwitchFilters:
    """What one connection asked FreeSWITCH to filter, kept exact for the library's own events."""

    def __init__(self, connection: ESLConnection, send: _Send) -> None:
        self.connection = connection
        self._send = send
        self._user: dict[_Key, str] = {}  # the user's filters -> header as spelled
        self._library: dict[_Key, int] = {}  # the library's filters -> how many need it
        self._spelling: dict[_Key, str] = {}
        self._installed: set[_Key] = set()  # what the switch holds, as far as we sent
        self._refused: dict[_Key, CommandError] = {}
        self._lock = anyio.Lock()

    # --- what the user sees -------------------------------------------------------
    @property
    def user_filters(self) -> list[tuple[str, str]]:
        return [(header, key[1]) for key, header in self._user.items()]

    @property
    def installed(self) -> list[tuple[str, str]]:
        """Every filter on the switch (the user's and the library's), in no particular order."""
        return [(self._spelling.get(key, key[0]), key[1]) for key in self._installed]

    @property
    def library_filters(self) -> list[tuple[str, str]]:
        """The library's own filters (whether on the switch now or not: see the module doc)."""
        return [(self._spelling[key], key[1]) for key in self._library]

    async def add(self, header: str, value: str) -> None:
        """The user's ``filter <header> <value>``."""
        cmd.filter(header, value)  # refused here, before any bookkeeping, if it cannot be sent
        key = (header.lower(), value)
        if key in self._user:
            return  # FreeSWITCH would store a second, indistinguishable entry
        self._user[key] = header
        self._spelling.setdefault(key, header)
        try:
            await self._sync()
        except BaseException:
            # Cancelled (or the connection went) before the switch got it: it never will.
            if key not in self._installed:
                self._user.pop(key, None)
            raise
        finally:
            refused = self._refused.pop(key, None)
        if refused is not None:
            raise refused

    async def delete(self, header: str, value: str | None = None) -> None:
        """The user's ``filter delete <header> [<value>]``."""
        data = cmd.filter_delete(header, value)
        name = header.lower()
        doomed = [key for key in self._user if key[0] == name and value in (None, key[1])]
        if doomed:
            for key in doomed:
                del self._user[key]
            await self._sync()
            return
        # None of ours: pass it on as asked. FreeSWITCH may have dropped some of
        # the library's entries with it: those are put back.
        reply = await self._send(data, "filter delete")
        if not reply.ok:
            raise CommandError("filter delete", reply.reply_text)
        self._installed = {
            key for key in self._installed if not (key[0] == name and value in (None, key[1]))
        }
        await self._sync()

    # --- the library's own ---------------------------------------------------------
    def hold(self, header: str, value: str) -> None:
        """The library needs ``header: value`` events to pass (synchronous bookkeeping only)."""
        key = (header.lower(), value)
        self._library[key] = self._library.get(key, 0) + 1
        self._spelling.setdefault(key, header)

    def release(self, header: str, value: str) -> None:
        """Undo one :meth:`hold`; the switch forgets the filter soon after (nobody waits)."""
        key = (header.lower(), value)
        count = self._library.get(key, 0) - 1
        if count > 0:
            self._library[key] = count
            return
        self._library.pop(key, None)
        if key in self._user:
            return
        if key in self._installed and self.connection.is_open:
            # Deleting it from the switch forgets its spelling too.
            self.connection.start_soon(self._sync_quietly, name="filter release")
        elif key not in self._installed:
            # Never on the switch (the user has no filters): nothing to delete, but the
            # spelling must go, or every call and job leaves one behind for good.
            self._spelling.pop(key, None)

    async def ensure(self, header: str, value: str) -> None:
        """Return once a held filter is on the switch, if the switch filters at all."""
        key = (header.lower(), value)
        if self._user and key not in self._installed and key in self._library:
            await self._sync()

    # --- talking to the switch ----------------------------------------------------------
    async def _sync(self) -> None:
        """Bring the switch in line, from a task the caller's cancellation cannot interrupt."""
        if not self.connection.is_open:
            raise self._lost()
        sync = _Round()
        self.connection.start_soon(self._run, sync, name="filter sync")
        await sync.done.wait()
        if sync.error is not None:
            raise sync.error

    async def _sync_quietly(self) -> None:
        sync = _Round()
        await self._run(sync)
        if sync.error is not None:
            logger.debug("could not remove a filter: %s", sync.error)

    async def _run(self, sync: _Round) -> None:
        try:
            async with self._lock:
                while (step := self._next_step()) is not None:
                    await self._apply(*step)
        except GenesisError as exc:
            sync.error = exc
        except BaseException:
            # Only the end of the connection cancels this task.
            sync.error = self._lost()
            raise
        finally:
            sync.done.set()

    def _lost(self) -> ConnectionLost:
        reason = self.connection.lost_reason
        if isinstance(reason, ConnectionLost):
            return ConnectionLost(f"filter: {reason}", stage=CommandStage.NOT_SENT)
        return ConnectionLost("filter: connection closed", stage=CommandStage.NOT_SENT)

    def _next_step(self) -> tuple[str, _Key | None] | None:
        if not self._user:
            return ("clear", None) if self._installed else None
        # The library's first: from the user's first filter on, they must already be there.
        for key in self._library:
            if key not in self._installed:
                return ("add", key)
        for key in self._user:
            if key not in self._installed and key not in self._refused:
                return ("add", key)
        for key in self._installed:
            if key not in self._user and key not in self._library:
                return ("delete", key)
        return None

    async def _apply(self, step: str, key: _Key | None) -> None:
        if key is None:
            self._installed.clear()
            await self._send(cmd.filter_delete_all(), "filter delete all")
            return
        header = self._spelling.get(key, key[0])
        if step == "delete":
            self._installed.discard(key)
            if key not in self._user:
                self._spelling.pop(key, None)
            await self._send(cmd.filter_delete(header, key[1]), "filter delete")
            return
        self._installed.add(key)
        reply = await self._send(cmd.filter(header, key[1]), "filter")
        if not reply.ok:
            self._installed.discard(key)
            error = CommandError("filter", reply.reply_text)
            if key in self._user:
                del self._user[key]
                self._refused[key] = error
            else:
                # Nothing the library adds is refusable (uuids); if it ever is, say so.
                logger.warning("FreeSWITCH refused the filter %s %s: %s", header, key[1], error)
                self._library.pop(key, None)
