"""The command surface shared by every ESL client (Inbound and outbound Sessions).

Built on :class:`~genesis_trio._client_core.ClientCore` (the connection, what was
asked of the switch, raw commands).
"""

# A command's ``timeout=`` is the deadline of its own cancel scope (an
# OperationTimeout when it fires), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

import math
import uuid as uuid_module
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

import anyio

from ._client_core import ClientCore, is_error
from ._dispatch import HandlerRegistration, in_worker_thread
from ._exceptions import CommandError, LocalProtocolError
from ._outcome import OperationTimeout
from ._stream import EventHandler
from ._subscription import ConnectionGap, Overflow, Subscription, checked_overflow
from .protocol import ApiResponse, CommandReply, Event, EventFormat, LogData
from .protocol import commands as cmd

if TYPE_CHECKING:
    pass

__all__ = ["ESLClient"]

ALL = "ALL"


class ESLClient(ClientCore):
    """The command surface common to Inbound and outbound Sessions.

    Every method that talks to FreeSWITCH raises :class:`CommandError` when the
    switch answers ``-ERR`` (``check=False`` returns the raw reply instead),
    and :class:`ConnectionLost` when the connection goes away under it.

    What the client asked FreeSWITCH for (``event`` subscriptions, filters)
    belongs to one connection: a new connection (re-entering an ``Inbound``)
    starts from nothing, as the switch does, and nothing is carried over.
    Commands take ``timeout=`` (seconds for the whole exchange, raising
    :class:`~genesis_trio.OperationTimeout`, a :class:`TimeoutError`); None
    uses :attr:`command_timeout`, and ``math.inf`` waits without a limit
    even when a default is set.
    """

    # --- api / bgapi -------------------------------------------------------
    async def api(self, command: str, *, check: bool = True, timeout: float | None = None) -> str:
        """Run ``api <command>`` and return its output (the response body).

        ``api`` blocks the connection's reply queue until FreeSWITCH answers:
        an ``api originate`` waits for the callee, so give it a ``timeout``
        (or use :meth:`bgapi`, which returns a job at once).
        """
        label = f"api {command.split(' ', 1)[0]}"
        reply = await self._connection.send_command(
            cmd.api(command), label, timeout=self._timeout(timeout)
        )
        if not isinstance(reply, ApiResponse):
            text = reply.reply_text if isinstance(reply, CommandReply) else repr(reply)
            raise CommandError(label, text)
        if check and is_error(reply.body):
            raise CommandError(f"api {command}", reply.body.strip())
        return reply.body

    async def bgapi(self, command: str, *, check: bool = True, timeout: float | None = None) -> str:
        """Run ``bgapi <command>`` and return the BACKGROUND_JOB result body.

        The Job-UUID is chosen here and registered before the command is
        written, so the job's event cannot arrive before anyone waits for it.
        ``timeout`` covers the command and the job; a job that times out
        keeps running in FreeSWITCH.
        """
        event = await self.bgapi_event(command, timeout=timeout)
        body = event.body or ""
        if check and is_error(body):
            raise CommandError(f"bgapi {command}", body.strip())
        return body

    async def bgapi_event(self, command: str, *, timeout: float | None = None) -> Event:
        """Like :meth:`bgapi` but returns the whole BACKGROUND_JOB event.

        With FreeSWITCH-side filters in place (:meth:`filter`), the job's own
        ``Job-UUID`` is let through by a filter of its own while it runs.
        """
        limit = self._timeout(timeout)
        if limit is None or limit == math.inf:
            return await self._bgapi_event(command)
        if limit < 0:
            raise ValueError("timeout must not be negative")
        with anyio.move_on_after(limit) as scope:
            return await self._bgapi_event(command)
        assert scope.cancelled_caught
        raise OperationTimeout(f"bgapi {command.split(' ', 1)[0]}", limit)

    async def _bgapi_event(self, command: str) -> Event:
        job_uuid = str(uuid_module.uuid4())
        data = cmd.bgapi(command, job_uuid)  # refused here, before anything is sent
        await self._ensure_background_jobs()
        filters = self._filters
        filters.hold("Job-UUID", job_uuid)
        job = self._connection.expect_job(job_uuid)
        try:
            await filters.ensure("Job-UUID", job_uuid)
            await self._send_checked(
                data,
                f"bgapi {command.split(' ', 1)[0]}",
                timeout=math.inf,  # bgapi_event's own timeout covers the command and the job
            )
            return await self._connection.wait_job(job_uuid, job)
        finally:
            self._connection.forget_job(job_uuid)
            filters.release("Job-UUID", job_uuid)

    async def _ensure_background_jobs(self) -> None:
        if self._subscribed_all or "BACKGROUND_JOB" in self._switch_subscriptions:
            return
        self._switch_subscriptions["BACKGROUND_JOB"] = 1
        await self._send_checked(
            cmd.event("BACKGROUND_JOB", event_format=self._event_format), "event BACKGROUND_JOB"
        )

    # --- switch-side event selection ----------------------------------------
    async def events(self, *names: str, event_format: EventFormat | None = None) -> None:
        """Ask FreeSWITCH to send these events (``ALL`` when none are named)."""
        fmt = event_format or self._event_format
        self._event_format = fmt
        wanted = list(names) or [ALL]
        await self._send_checked(cmd.event(*wanted, event_format=fmt), "event")
        for name in wanted:
            if name == ALL:
                self._subscribed_all = True
            self._switch_subscriptions.setdefault(name, 0)

    async def nixevent(self, *names: str) -> None:
        await self._send_checked(cmd.nixevent(*names), "nixevent")
        for name in names:
            self._switch_subscriptions.pop(name, None)

    async def noevents(self) -> None:
        await self._send_checked(cmd.noevents(), "noevents")
        self._switch_subscriptions.clear()
        self._subscribed_all = False

    async def filter(self, header: str, value: str) -> None:
        """Add a FreeSWITCH-side filter: only events matching some filter are sent.

        The events the library itself waits for keep coming: each bgapi job
        and each followed channel gets an exact filter of its own (``Job-UUID``,
        ``Unique-ID``) while filters exist, added before your first one.
        """
        await self._filters.add(header, value)

    async def filter_delete(self, header: str, value: str | None = None) -> None:
        """Remove filters (every value of ``header`` when ``value`` is None).

        Removing your last filter sends ``filter delete all``, so the
        library's own filters go with it in the same step.
        """
        await self._filters.delete(header, value)

    async def divert_events(self, on: bool = True) -> None:
        await self._send_checked(cmd.divert_events(on), "divert_events")
        self._state().divert_events = on

    async def log(self, level: int | str = 7) -> None:
        await self._send_checked(cmd.log(level), "log")
        self._state().log_level = level

    async def nolog(self) -> None:
        await self._send_checked(cmd.nolog(), "nolog")
        self._state().log_level = None

    async def sendevent(
        self,
        name: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: str | bytes | None = None,
        *,
        timeout: float | None = None,
    ) -> str:
        """Fire an event into FreeSWITCH; returns the new event's uuid."""
        reply = await self._send_checked(
            cmd.sendevent(name, headers, body), f"sendevent {name}", timeout=timeout
        )
        return reply.reply_text.removeprefix("+OK").strip()

    async def sendmsg(
        self,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        uuid: str | None = None,
        body: str | bytes | None = None,
        timeout: float | None = None,
    ) -> CommandReply:
        return await self._send_checked(
            cmd.sendmsg(headers, uuid=uuid, body=body), "sendmsg", timeout=timeout
        )

    # --- local subscriptions and handlers ------------------------------------
    async def _ensure_switch_events(self, names: Iterable[str]) -> None:
        if self._subscribed_all:
            return
        missing = [n for n in names if n not in self._switch_subscriptions]
        if not missing:
            return
        # CUSTOM subclasses are requested as "CUSTOM <subclass>"; a subclass is
        # known by its "::" (mod_sms's SMS::SEND_MESSAGE is upper case).
        plain = [n for n in missing if "::" not in n]
        subclasses = [n for n in missing if n not in plain]
        words = plain + (["CUSTOM", *subclasses] if subclasses else [])
        await self.events(*words)
        for name in missing:
            self._switch_subscriptions.setdefault(name, 0)

    @overload
    def subscribe(
        self,
        *names: str,
        uuid: str | None = None,
        max_buffer: int = 10_000,
        overflow: Overflow = Overflow.ERROR,
        request: bool = True,
        gaps: Literal[False] = False,
    ) -> AbstractAsyncContextManager[Subscription[Event]]: ...

    @overload
    def subscribe(
        self,
        *names: str,
        uuid: str | None = None,
        max_buffer: int = 10_000,
        overflow: Overflow = Overflow.ERROR,
        request: bool = True,
        gaps: Literal[True],
    ) -> AbstractAsyncContextManager[Subscription[Event | ConnectionGap]]: ...

    def subscribe(
        self,
        *names: str,
        uuid: str | None = None,
        max_buffer: int = 10_000,
        overflow: Overflow = Overflow.ERROR,
        request: bool = True,
        gaps: bool = False,
    ) -> AbstractAsyncContextManager[Subscription[Any]]:
        """Receive events as an async iterator::

            async with client.subscribe("CHANNEL_ANSWER") as events:
                async for event in events:
                    ...

        ``names`` are event names or CUSTOM subclasses (none means all);
        with ``uuid`` only that channel's events among them arrive;
        ``request=False`` only listens to what the connection already receives.

        A subscription belongs to one connection: when it is lost, iterating
        raises :class:`ConnectionLost`. With ``gaps=True`` on a reconnecting
        :class:`~genesis_trio.Inbound` it outlives the connection instead: after a
        reconnect it yields a :class:`~genesis_trio.ConnectionGap` (events may have
        been missed), then the new connection's events.
        """
        return self._subscribe(names, uuid, max_buffer, overflow, request, gaps)

    def _open_subscription(
        self,
        keys: list[str],
        *,
        uuid: str | None,
        matches: Callable[[Event], bool] | None,
        max_buffer: int,
        overflow: Overflow,
        gaps: bool,
    ) -> Subscription[Any]:
        """A subscription on the open connection (a reconnecting Inbound keeps ``gaps`` ones)."""
        return self._connection.subscribe(
            keys, uuid=uuid, matches=matches, max_buffer=max_buffer, overflow=overflow
        )

    @asynccontextmanager
    async def _subscribe(
        self,
        names: tuple[str, ...],
        uuid: str | None,
        max_buffer: int,
        overflow: Overflow,
        request: bool,
        gaps: bool,
    ) -> AsyncIterator[Subscription[Any]]:
        keys = list(names) or [ALL]
        overflow = checked_overflow(overflow, stacklevel=4)  # user -> __aenter__ -> here
        matches = None
        if uuid is not None and ALL not in keys:
            # A channel's events are routed by its uuid: the names then narrow them down.
            wanted = frozenset(keys)

            def matches(event: Event) -> bool:
                return event.name in wanted or event.subclass in wanted

        sub = self._open_subscription(
            keys, uuid=uuid, matches=matches, max_buffer=max_buffer, overflow=overflow, gaps=gaps
        )
        try:
            if request:
                await self._ensure_switch_events(keys)
            yield sub
        finally:
            sub.close()

    @overload
    def subscribe_logs(
        self, level: int | str = 7, *, gaps: Literal[False] = False
    ) -> AbstractAsyncContextManager[Subscription[LogData]]: ...

    @overload
    def subscribe_logs(
        self, level: int | str = 7, *, gaps: Literal[True]
    ) -> AbstractAsyncContextManager[Subscription[LogData | ConnectionGap]]: ...

    def subscribe_logs(
        self, level: int | str = 7, *, gaps: bool = False
    ) -> AbstractAsyncContextManager[Subscription[Any]]:
        """Receive FreeSWITCH log lines (``log <level>``) as an async iterator.

        Like :meth:`subscribe`: a plain one belongs to one connection (iterating raises
        :class:`ConnectionLost` once it is lost); with ``gaps=True`` on a reconnecting
        :class:`~genesis_trio.Inbound` it yields a :class:`~genesis_trio.ConnectionGap`
        after a reconnect, then the new connection's log lines (the client asks for the
        log level again).
        """
        return self._subscribe_logs(level, gaps)

    def _open_log_subscription(self, *, gaps: bool) -> Subscription[Any]:
        """Log lines of the open connection (a reconnecting Inbound keeps ``gaps`` ones)."""
        return self._connection.subscribe_logs()

    @asynccontextmanager
    async def _subscribe_logs(
        self, level: int | str, gaps: bool
    ) -> AsyncIterator[Subscription[Any]]:
        sub = self._open_log_subscription(gaps=gaps)
        try:
            await self.log(level)
            yield sub
        finally:
            sub.close()

    def on(
        self,
        name: str,
        handler: EventHandler,
        *,
        concurrent: bool = False,
        max_concurrent: int = 1000,
        max_buffer: int = 10_000,
        overflow: Overflow = Overflow.ERROR,
    ) -> HandlerRegistration:
        """Run ``handler(event)`` for every event named ``name`` (or ``ALL``).

        The handler runs inside the connection's task group and ends with it;
        an exception in it is logged and the connection carries on. With
        ``concurrent=True`` calls overlap (at most ``max_concurrent`` at once,
        served by a pool of workers, not a task per event). Up to
        ``max_buffer`` events wait for the handler; past that ``overflow``
        decides (``ERROR``: the handler is stopped and the error logged;
        ``DROP_OLDEST``: the oldest waiting event is dropped and counted in
        ``registration.dropped``). The connection never waits for a handler,
        so a handler may await commands on its own connection. Leaving the
        connection drops the events not yet handed to the handler. Call
        :meth:`events` (or use :meth:`subscribe`) to have FreeSWITCH send them.

        A plain ``def`` handler runs in a worker thread (``anyio.to_thread``), at most
        :attr:`handler_threads` at once, so it never blocks the event loop; it can call
        back into the loop with ``anyio.from_thread.run``. A thread cannot be cancelled:
        leaving the connection waits for a running sync handler to return.
        """
        if not name or "\n" in name:
            raise LocalProtocolError(f"invalid event name {name!r}")
        return self._register_handler(
            [name],
            in_worker_thread(handler, self.handler_limiter),
            concurrent=concurrent,
            max_concurrent=max_concurrent,
            max_buffer=max_buffer,
            overflow=checked_overflow(overflow),
        )

    def _register_handler(
        self,
        keys: list[str],
        handler: EventHandler,
        *,
        concurrent: bool,
        max_concurrent: int,
        max_buffer: int,
        overflow: Overflow,
    ) -> HandlerRegistration:
        """A handler on the open connection (a reconnecting Inbound keeps it across connections)."""
        return self._connection.run_handler(
            keys,
            handler,
            concurrent=concurrent,
            max_concurrent=max_concurrent,
            max_buffer=max_buffer,
            overflow=overflow,
        )
