"""Routing what the reader parsed: events to subscriptions and handlers, jobs, logs.

Everything here is synchronous and never waits for a consumer: each
subscription and handler registration applies its own overflow policy at
once, so the reader always moves on to the next frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from .._dispatch import EventHandler, HandlerPool, HandlerRegistration
from .._exceptions import CommandStage, ConnectionLost
from .._subscription import Overflow, Subscription
from ..protocol import Event, LogData

__all__ = ["ALL", "PendingJob", "Routes"]

ALL = "ALL"


class _Route(Protocol):
    """What the reader delivers events to: a Subscription or a HandlerRegistration."""

    matches: Callable[[Event], bool] | None

    def deliver(self, event: Event, /) -> None: ...
    def fail(self, error: BaseException, /) -> None: ...
    def end(self) -> None: ...
    @property
    def buffered(self) -> int: ...


@dataclass(slots=True, eq=False)
class PendingJob:
    """A bgapi whose BACKGROUND_JOB has not arrived yet."""

    done: anyio.Event = field(default_factory=anyio.Event)
    event: Event | None = None
    error: BaseException | None = None


class Routes:
    """One connection's routing tables.

    Events route by name (and, for CUSTOM, by subclass) or, for channel
    subscriptions, by ``Unique-ID`` in O(1).
    """

    def __init__(self) -> None:
        self._by_key: dict[str, list[_Route]] = {}
        self._by_uuid: dict[str, list[_Route]] = {}
        self._jobs: dict[str, PendingJob] = {}
        self._log_subscribers: list[Subscription[LogData]] = []
        # Set once, by close(): a subscription opened afterwards fails at once.
        self._lost: BaseException | None = None
        # While a reconnecting client's routes hold (see hold()), what arrives waits here.
        self._held: list[Event | LogData] | None = None

    @property
    def buffered(self) -> int:
        """Events routed to subscriptions and handlers and not taken by them yet."""
        seen: set[int] = set()
        total = 0
        for table in (self._by_key, self._by_uuid):
            for routes in table.values():
                for route in routes:
                    if id(route) not in seen:  # one route can be under several keys
                        seen.add(id(route))
                        total += route.buffered
        return total

    # --- registering ------------------------------------------------------
    def subscribe(
        self,
        keys: Iterable[str],
        *,
        uuid: str | None,
        matches: Callable[[Event], bool] | None,
        max_buffer: int,
        overflow: Overflow,
    ) -> Subscription[Event]:
        key_list, table = self._keys(keys, uuid)
        sub: Subscription[Event] = Subscription(
            matches,
            max_buffer=max_buffer,
            overflow=overflow,
            on_close=lambda route: self._unregister(route, key_list, table),
        )
        for key in key_list:
            table.setdefault(key, []).append(sub)
        if self._lost is not None:
            sub.fail(self._lost)
        return sub

    def add_handler(
        self,
        keys: Iterable[str],
        pool: HandlerPool,
        handler: EventHandler,
        *,
        uuid: str | None,
        max_concurrent: int,
        max_buffer: int,
        overflow: Overflow,
    ) -> HandlerRegistration:
        key_list, table = self._keys(keys, uuid)
        registration = HandlerRegistration(
            pool,
            handler,
            max_concurrent=max_concurrent,
            max_buffer=max_buffer,
            overflow=overflow,
            on_close=lambda route: self._unregister(route, key_list, table),
        )
        for key in key_list:
            table.setdefault(key, []).append(registration)
        return registration

    def _keys(
        self, keys: Iterable[str], uuid: str | None
    ) -> tuple[list[str], dict[str, list[_Route]]]:
        if uuid is not None:
            return [uuid], self._by_uuid
        return list(keys) or [ALL], self._by_key

    @staticmethod
    def _unregister(route: _Route, keys: list[str], table: dict[str, list[_Route]]) -> None:
        # Copy on write: the reader may be iterating this very list (a channel's tap
        # closes itself from its own matches on CHANNEL_DESTROY); the routes after the
        # closed one must still see the event, so the list it iterates stays intact.
        for key in keys:
            routes = table.get(key)
            if routes is not None and route in routes:
                remaining = [other for other in routes if other is not route]
                if remaining:
                    table[key] = remaining
                else:
                    del table[key]

    def subscribe_logs(self, *, max_buffer: int) -> Subscription[LogData]:
        def unregister(sub: Subscription[LogData]) -> None:
            if sub in self._log_subscribers:
                self._log_subscribers.remove(sub)

        sub: Subscription[LogData] = Subscription(max_buffer=max_buffer, on_close=unregister)
        self._log_subscribers.append(sub)
        return sub

    # --- background jobs --------------------------------------------------
    def expect_job(self, job_uuid: str) -> PendingJob:
        job = self._jobs[job_uuid] = PendingJob()
        return job

    def forget_job(self, job_uuid: str) -> None:
        self._jobs.pop(job_uuid, None)

    async def wait_job(self, job_uuid: str, job: PendingJob) -> Event:
        try:
            await job.done.wait()
        finally:
            self._jobs.pop(job_uuid, None)
        if job.error is not None:
            raise job.error
        assert job.event is not None
        return job.event

    # --- delivering (the reader) ------------------------------------------
    def hold(self) -> None:
        """Keep what arrives from now on until :meth:`release` (a reconnect under way).

        A reconnecting client's ``gaps=True`` subscriptions must read the
        :class:`ConnectionGap` marker before the new connection's first event or log
        line, but the new connection delivers as soon as its subscription is asked
        again, before the reconnect is complete and the marker exists.
        """
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Deliver what was held, in the order it arrived, and stop holding."""
        held, self._held = self._held, None
        for item in held or ():
            if isinstance(item, Event):
                self.route(item)
            else:
                self.deliver_log(item)

    def route(self, event: Event) -> None:
        if self._held is not None:
            self._held.append(event)
            return
        # Each lookup reads one header from the undecoded event (see Event).
        name = event.get("Event-Name")
        if name == "BACKGROUND_JOB" and self._jobs:
            job_uuid = event.get("Job-UUID")
            job = self._jobs.pop(job_uuid, None) if job_uuid is not None else None
            if job is not None:
                job.event = event
                job.done.set()
        routes = self._by_key
        if routes:
            # By name, then (only CUSTOM events, as in FreeSWITCH's own subscriptions) by
            # subclass, then ALL; written out, not a loop over a tuple of keys: most events
            # of a busy connection find no route at all here.
            subs = routes.get(name) if name is not None else None
            if subs:
                for sub in subs:
                    if sub.matches is None or sub.matches(event):
                        sub.deliver(event)
            if name == "CUSTOM":
                subclass = event.get("Event-Subclass")
                subs = routes.get(subclass) if subclass is not None else None
                if subs:
                    for sub in subs:
                        if sub.matches is None or sub.matches(event):
                            sub.deliver(event)
            subs = routes.get(ALL)
            if subs:
                for sub in subs:
                    if sub.matches is None or sub.matches(event):
                        sub.deliver(event)
        if self._by_uuid:
            uuid = event.get("Unique-ID")
            subs = self._by_uuid.get(uuid) if uuid is not None else None
            if subs:
                for sub in subs:
                    if sub.matches is None or sub.matches(event):
                        sub.deliver(event)

    def deliver_log(self, log: LogData) -> None:
        if self._held is not None:
            self._held.append(log)
            return
        for sub in self._log_subscribers:
            sub.deliver(log)

    def close(self, reason: BaseException, *, clean: bool) -> None:
        """The connection is gone: fail every job; end (clean) or fail every subscriber."""
        self._lost = reason
        for job in self._jobs.values():
            job.error = ConnectionLost(f"background job: {reason}", stage=CommandStage.ACCEPTED)
            job.done.set()
        self._jobs.clear()
        subscriptions = [s for subs in self._by_key.values() for s in subs]
        subscriptions += [s for subs in self._by_uuid.values() for s in subs]
        for sub in subscriptions:
            if clean:
                sub.end()
            else:
                sub.fail(reason)
        for log_sub in self._log_subscribers:
            log_sub.end() if clean else log_sub.fail(reason)
