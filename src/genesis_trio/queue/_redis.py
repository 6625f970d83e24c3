"""A queue backend on Redis: one line per queue shared by every process and machine.

The rule for processes that die
-------------------------------
Every ticket, waiting or holding, has a *lease* that expires ``lease_ttl``
seconds after it was last renewed (measured on the Redis server's clock).
A waiter renews its lease each time it polls (every ``heartbeat_interval``);
a holder renews it from a heartbeat task that lives in the slot's own task
group, beside the ``async with`` body. A ticket whose lease ran out is dropped
by the next script that touches the queue, and its slot goes to the next
waiter. So a process that dies (or stays cut off from Redis) frees its slots
at most ``lease_ttl + heartbeat_interval`` seconds later.

A holder whose heartbeat finds its lease already gone, or that could not
reach Redis before the lease ran out, cannot know that nobody else holds the
slot: its ``async with`` body is cancelled and :class:`QueueLeaseLost` raised.

Restarts
--------
A Redis that restarted may have lost slots whose holders still run. The
scripts grant nothing for a *fence* after the server started (its
``uptime_in_seconds``): ``ceil(lease_ttl + heartbeat_interval) + 1`` seconds,
longer than any holder from before the restart can go on believing in its
lease, since every renewal attempt is bounded by the lease's own end.

Waking up
---------
A slot is granted inside a Lua script, which publishes the ticket on one
pub/sub channel per backend prefix; each process runs one subscriber (in the
backend's own task group) that wakes exactly the waiter named. Pub/sub is
fire-and-forget, so each waiter also polls every ``heartbeat_interval``: that
poll renews its lease, catches a notice lost during a reconnect, and reaps
dead processes' tickets (nobody publishes when a process dies). Pub/sub gives
a grant to the next waiter within a network round trip; polling alone would
trade that latency against load on Redis.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc

from .._util import collapse_single_exception_group
from . import _redis_scripts as scripts
from ._backend import note_requeued
from ._errors import QueueLeaseLost
from ._redis_support import (
    RedisClient,
    SingleUseLifetime,
    as_int,
    as_text,
    checked_heartbeat_interval,
    connection_errors,
    make_client,
)

if TYPE_CHECKING:
    from coredis.commands.script import Script

__all__ = ["RedisBackend"]

logger = logging.getLogger("genesis_trio.queue")

_RESUBSCRIBE_MIN_DELAY: Final = 0.05

_GRANTED: Final = 1
_WAITING: Final = 0
_GONE: Final = -1
_BOUND_MISMATCH: Final = -1


@dataclass(frozen=True, slots=True)
class _Keys:
    waiting: str
    leases: str
    holders: str
    meta: str

    def as_list(self) -> list[str]:
        return [self.waiting, self.leases, self.holders, self.meta]


@dataclass(frozen=True, slots=True)
class _Scripts:
    join: Script[Any]
    poll: Script[Any]
    leave: Script[Any]
    status: Script[Any]


class RedisBackend(SingleUseLifetime):
    """Queue lines kept in Redis, for many app instances on many machines.

    Use it as an async context manager; it owns its Redis connections and the
    task that receives wake-ups::

        async with RedisBackend("redis://redis.internal:6379/0") as backend:
            queue = Queue(backend)
            async with queue.slot("support", max_concurrent=5):
                ...

    :param client_or_url: a ``redis://`` URL, or a ``coredis.Redis`` client
        (entered by the backend for as long as the backend is).
    :param key_prefix: namespace of every key and of the wake-up channel.
    :param lease_ttl: seconds a ticket survives without renewal (see the module doc).
    :param heartbeat_interval: seconds between renewals; ``lease_ttl / 3`` by default.
    :param cleanup_timeout: seconds allowed to leave the line after a
        cancellation; if Redis cannot be reached by then the lease expiry frees the slot.
    """

    _lifetime_owner = "RedisBackend"

    def __init__(
        self,
        client_or_url: RedisClient | str,
        *,
        key_prefix: str = "genesis_trio:queue",
        lease_ttl: float = 15.0,
        heartbeat_interval: float | None = None,
        cleanup_timeout: float = 5.0,
    ) -> None:
        if not (lease_ttl > 0 and math.isfinite(lease_ttl)):
            raise ValueError(f"lease_ttl must be a positive number of seconds, not {lease_ttl}")
        heartbeat_interval = checked_heartbeat_interval("lease_ttl", lease_ttl, heartbeat_interval)
        self._client = make_client(client_or_url)
        self._prefix = key_prefix
        self._lease_ttl = lease_ttl
        self._lease_ms = max(1, round(lease_ttl * 1000))
        self._heartbeat_interval = heartbeat_interval
        self._cleanup_timeout = cleanup_timeout
        # Whole seconds after a Redis start with no grants: a holder from before
        # the start has learned of its lost lease by then (its lease, its next
        # heartbeat, a second of slack for the heartbeat's own round trip).
        self._fence = math.ceil(lease_ttl + heartbeat_interval) + 1
        self._channel = f"{key_prefix}:granted"
        self._grant_events: dict[str, anyio.Event] = {}
        self._limits: dict[str, int] = {}
        self._scripts: _Scripts | None = None

    @property
    def client(self) -> RedisClient:
        """The coredis client the backend uses (open while the backend is)."""
        return self._client

    @property
    def key_prefix(self) -> str:
        return self._prefix

    @property
    def lease_ttl(self) -> float:
        return self._lease_ttl

    @property
    def heartbeat_interval(self) -> float:
        return self._heartbeat_interval

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[RedisBackend]:
        client = self._client
        with collapse_single_exception_group():
            async with client:
                # The subscriber retries a lost connection (right for a Redis
                # restart later on); an unreachable Redis at start-up must fail here.
                await client.ping()
                self._scripts = _Scripts(
                    join=client.register_script(scripts.JOIN),
                    poll=client.register_script(scripts.POLL),
                    leave=client.register_script(scripts.LEAVE),
                    status=client.register_script(scripts.STATUS),
                )
                try:
                    async with anyio.create_task_group() as task_group:
                        await task_group.start(self._subscribe)
                        try:
                            yield self
                        finally:
                            task_group.cancel_scope.cancel()
                finally:
                    self._scripts = None

    async def _subscribe(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Receive grant notices, reconnecting for as long as the backend runs.

        The retries are ours, not coredis's: its subscriber retries inside its
        own task, where leaving the backend could not cancel it (leaving while
        Redis was down hung). Whatever one connection ends with is logged and
        retried here, so nothing from it reaches the backend's caller.
        """
        from coredis.retry import NoRetryPolicy

        delay = _RESUBSCRIBE_MIN_DELAY
        started = False
        while True:
            try:
                async with self._client.pubsub(
                    channels=[self._channel],
                    ignore_subscribe_messages=True,
                    retry_policy=NoRetryPolicy(),
                ) as pubsub:
                    if started:
                        # Notices published while we were away are lost: every
                        # waiter polls now rather than at its next heartbeat.
                        for granted in list(self._grant_events.values()):
                            granted.set()
                    else:
                        started = True
                        task_status.started()
                    delay = _RESUBSCRIBE_MIN_DELAY
                    async for message in pubsub:
                        woken = self._grant_events.get(as_text(message["data"]))
                        if woken is not None:
                            woken.set()
            except Exception as exc:
                if not started:
                    raise
                logger.warning(
                    "queue: wake-up subscription lost (%s); retrying in %gs", _leaf(exc), delay
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, self._heartbeat_interval)

    def _keys(self, queue_id: str) -> _Keys:
        # The braces are a Redis Cluster hash tag: one queue's keys share a node.
        base = f"{self._prefix}:{{{queue_id}}}"
        return _Keys(f"{base}:waiting", f"{base}:leases", f"{base}:holders", f"{base}:meta")

    def _running(self) -> _Scripts:
        if self._scripts is None:
            raise RuntimeError("RedisBackend is used outside its `async with` block")
        return self._scripts

    async def join(self, queue_id: str, ticket: str, max_concurrent: int) -> int:
        reply: object = await self._running().join(
            keys=self._keys(queue_id).as_list(),
            args=[self._channel, self._fence, ticket, max_concurrent, self._lease_ms],
        )
        state, depth = (as_int(value) for value in _as_list(reply))
        if state == _BOUND_MISMATCH:
            raise ValueError(
                f"queue {queue_id!r} is in use with max_concurrent={depth}, not {max_concurrent}"
            )
        self._limits[ticket] = max_concurrent
        return depth

    async def _poll(self, queue_id: str, ticket: str) -> int:
        reply: object = await self._running().poll(
            keys=self._keys(queue_id).as_list(),
            args=[self._channel, self._fence, ticket, self._lease_ms],
        )
        return as_int(reply)

    async def wait_for_turn(self, queue_id: str, ticket: str) -> None:
        errors = connection_errors()
        granted = self._grant_events[ticket] = anyio.Event()
        unreachable_since: float | None = None
        try:
            while True:
                try:
                    state = await self._poll(queue_id, ticket)
                except errors as exc:
                    # Ride out a short outage (a Redis restart) as a holder does,
                    # for up to a lease; after that, a dead Redis is the caller's news.
                    now = anyio.current_time()
                    if unreachable_since is None:
                        unreachable_since = now
                    if now - unreachable_since >= self._lease_ttl:
                        raise
                    logger.warning("queue %r: could not poll for %s: %s", queue_id, ticket, exc)
                    await anyio.sleep(self._heartbeat_interval)
                    continue
                unreachable_since = None
                if state == _GRANTED:
                    return
                if state == _GONE:
                    # Cut off from Redis for longer than the lease: the place
                    # is lost, so line up again rather than wait forever.
                    logger.warning("queue %r: ticket %s lost its place; requeued", queue_id, ticket)
                    await self.join(queue_id, ticket, self._limits[ticket])
                    note_requeued()
                    continue
                with anyio.move_on_after(self._heartbeat_interval):
                    await granted.wait()
                if granted.is_set():
                    granted = self._grant_events[ticket] = anyio.Event()
        finally:
            self._grant_events.pop(ticket, None)

    @asynccontextmanager
    async def hold(self, queue_id: str, ticket: str) -> AsyncIterator[None]:
        failure: BaseException | None = None
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._renew_lease, queue_id, ticket)
                try:
                    yield
                finally:
                    task_group.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) != 1:
                raise
            failure = group.exceptions[0]
        if failure is not None:
            # Raised outside the handler so the exception keeps its own context:
            # the task group is our detail, the caller sees what actually happened.
            raise failure

    async def _renew_lease(self, queue_id: str, ticket: str) -> None:
        """Renew the lease until cancelled; raise QueueLeaseLost the moment it may be gone.

        The lease ends ``lease_ttl`` after the last renewal that Redis
        confirmed, counted from when that renewal was *sent* (it cannot have
        been applied earlier). Every wait here is bounded by that end, so a
        holder learns of a lost lease in time whatever state Redis is in: no
        reply, a refused connection, or a Redis restarted without its data.
        """
        errors = connection_errors()
        lease_ends = anyio.current_time() + self._lease_ttl
        while True:
            await anyio.sleep(
                max(0.0, min(self._heartbeat_interval, lease_ends - anyio.current_time()))
            )
            sent = anyio.current_time()
            if sent >= lease_ends:
                raise QueueLeaseLost(queue_id, ticket)
            state: int | None = None
            with anyio.move_on_after(lease_ends - sent):
                try:
                    state = await self._poll(queue_id, ticket)
                except errors as exc:
                    logger.warning(
                        "queue %r: could not renew the lease of %s: %s", queue_id, ticket, exc
                    )
            if state is None:
                continue
            if state != _GRANTED:
                raise QueueLeaseLost(queue_id, ticket)
            lease_ends = sent + self._lease_ttl

    async def leave(self, queue_id: str, ticket: str) -> None:
        self._limits.pop(ticket, None)
        scripts_ = self._scripts
        if scripts_ is None:
            return
        with anyio.move_on_after(self._cleanup_timeout) as scope:
            try:
                await scripts_.leave(
                    keys=self._keys(queue_id).as_list(), args=[self._channel, self._fence, ticket]
                )
            except connection_errors() as exc:
                logger.warning(
                    "queue %r: could not leave (%s); the lease of %s frees it in %gs",
                    queue_id,
                    exc,
                    ticket,
                    self._lease_ttl,
                )
        if scope.cancelled_caught:
            logger.warning(
                "queue %r: leaving timed out; the lease of %s frees it in %gs",
                queue_id,
                ticket,
                self._lease_ttl,
            )

    async def _status(self, queue_id: str) -> tuple[int, int]:
        reply: object = await self._running().status(
            keys=self._keys(queue_id).as_list(), args=[self._channel, self._fence]
        )
        waiting, holding = (as_int(value) for value in _as_list(reply))
        return waiting, holding

    async def depth(self, queue_id: str) -> int:
        return (await self._status(queue_id))[0]

    async def in_use(self, queue_id: str) -> int:
        return (await self._status(queue_id))[1]


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside nested groups: what to log about a lost subscription."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _as_list(reply: object) -> list[object]:
    if not isinstance(reply, (list, tuple)):
        raise TypeError(f"expected an array reply from Redis, got {reply!r}")
    return list(reply)
