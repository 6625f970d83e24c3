"""Load balancers: how many calls each destination carries, to pick the least loaded.

Two backends share one protocol: :class:`InMemoryLoadBalancer` for one
process and :class:`RedisLoadBalancer` for app instances on many machines.
Use :meth:`LoadBalancerBackend.track` around a call rather than pairing
``increment``/``decrement`` by hand: it brings the count back down however
the call ends, cancellation and lost connections included.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable
from uuid import uuid4

import anyio

from .._util import collapse_single_exception_group
from ..queue._redis_support import (
    LUA_NOW_MS,
    RedisClient,
    SingleUseLifetime,
    as_int,
    checked_heartbeat_interval,
    connection_errors,
    make_client,
)

if TYPE_CHECKING:
    from coredis.commands.script import Script

__all__ = ["InMemoryLoadBalancer", "LoadBalancerBackend", "RedisLoadBalancer"]

logger = logging.getLogger("genesis_trio.group")

#: Seconds a shielded count update may take after a cancellation.
CLEANUP_TIMEOUT: Final = 5.0


@runtime_checkable
class LoadBalancerBackend(Protocol):
    """Counts of calls in progress per destination key.

    Counts never go below zero. Implement the four coroutines; subclass this
    protocol explicitly to inherit :meth:`track`.
    """

    async def increment(self, key: str) -> int:
        """Count one more call on ``key``; return the new count."""
        ...

    async def decrement(self, key: str) -> int:
        """Count one call fewer on ``key`` (never below zero); return the new count."""
        ...

    async def least_loaded(self, keys: Sequence[str]) -> str:
        """The key with the fewest calls; ties go to the earliest in ``keys``.

        Raises ``ValueError`` for an empty sequence.
        """
        ...

    async def count(self, key: str) -> int:
        """Calls in progress on ``key``."""
        ...

    def track(self, key: str) -> AbstractAsyncContextManager[None]:
        """``async with balancer.track(key):`` counts one call for the block.

        The count goes up before the block and back down after it however the
        block ends; both updates are shielded from cancellation (with a short
        deadline), so a cancelled ring still brings the count back down.
        """
        return _track_by_counting(self, key)


@asynccontextmanager
async def _track_by_counting(balancer: LoadBalancerBackend, key: str) -> AsyncIterator[None]:
    # Shielded so a cancellation cannot land between "sent" and "counted":
    # afterwards we know the increment happened and owe exactly one decrement.
    with anyio.fail_after(CLEANUP_TIMEOUT, shield=True):
        await balancer.increment(key)
    try:
        yield
    finally:
        with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True) as scope:
            await balancer.decrement(key)
        if scope.cancelled_caught:
            logger.warning("load balancer: decrement of %r timed out", key)


def _pick_least_loaded(keys: Sequence[str], counts: Sequence[int]) -> str:
    best = min(range(len(keys)), key=counts.__getitem__)
    return keys[best]


class InMemoryLoadBalancer(LoadBalancerBackend):
    """Call counts in this process. ``async with`` is accepted (and does nothing)
    so code can swap it for :class:`RedisLoadBalancer`."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    async def __aenter__(self) -> InMemoryLoadBalancer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def increment(self, key: str) -> int:
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count

    async def decrement(self, key: str) -> int:
        count = self._counts.get(key, 0) - 1
        if count <= 0:
            self._counts.pop(key, None)
            return 0
        self._counts[key] = count
        return count

    async def least_loaded(self, keys: Sequence[str]) -> str:
        if not keys:
            raise ValueError("least_loaded() needs at least one key")
        return _pick_least_loaded(keys, [self._counts.get(key, 0) for key in keys])

    async def count(self, key: str) -> int:
        return self._counts.get(key, 0)


# Each call is a member "<instance>|<token>" of a per-destination set, and each
# balancer instance keeps a lease in the `instances` sorted set. A count is the
# number of members whose instance's lease is live: adding and removing a
# member are idempotent (safe to retry), a count cannot go negative, and the
# calls of a process that died stop counting when its lease runs out.
_LB_PRELUDE: Final = (
    LUA_NOW_MS
    + """
local instances = KEYS[1]
local function live_count(key, now, alive)
  local n = 0
  for _, member in ipairs(redis.call('SMEMBERS', key)) do
    local instance = string.match(member, '^([^|]+)|')
    local live = false
    if instance then
      live = alive[instance]
      if live == nil then
        local expiry = redis.call('ZSCORE', instances, instance)
        live = expiry ~= false and tonumber(expiry) > now
        alive[instance] = live
      end
    end
    if live then
      n = n + 1
    else
      redis.call('SREM', key, member)
    end
  end
  return n
end
"""
)

#: KEYS: instances, load set. ARGV: instance, member, ttl_ms. Returns the new count.
_ADD: Final = (
    _LB_PRELUDE
    + """
local now = now_ms()
redis.call('ZADD', instances, now + tonumber(ARGV[3]), ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return live_count(KEYS[2], now, {})
"""
)

#: KEYS: instances, load set. ARGV: member. Returns the new count.
_REMOVE: Final = (
    _LB_PRELUDE
    + """
redis.call('SREM', KEYS[2], ARGV[1])
return live_count(KEYS[2], now_ms(), {})
"""
)

#: KEYS: instances, load sets... Returns one count per load set.
_COUNTS: Final = (
    _LB_PRELUDE
    + """
local now, alive, counts = now_ms(), {}, {}
for i = 2, #KEYS do
  counts[i - 1] = live_count(KEYS[i], now, alive)
end
return counts
"""
)

#: KEYS: instances. ARGV: instance, ttl_ms (0 retires the instance).
_BEAT: Final = (
    _LB_PRELUDE
    + """
local now, ttl = now_ms(), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', instances, '-inf', now)
if ttl > 0 then
  redis.call('ZADD', instances, now + ttl, ARGV[1])
else
  redis.call('ZREM', instances, ARGV[1])
end
return 1
"""
)


class RedisLoadBalancer(SingleUseLifetime, LoadBalancerBackend):
    """Call counts in Redis, shared by every app instance that uses the same prefix.

    Use it as an async context manager: it registers this instance and keeps
    its lease alive from a heartbeat task::

        async with RedisLoadBalancer("redis://redis.internal:6379/0") as balancer:
            ...

    The rule for processes that die: the calls an instance counted stop
    counting ``instance_ttl`` seconds after its last heartbeat, so a crashed
    process cannot leave destinations looking busy forever.

    :param client_or_url: a ``redis://`` URL or a ``coredis.Redis`` client.
    :param key_prefix: namespace of the keys (all in one Redis Cluster hash slot).
    :param instance_ttl: seconds this instance's counts survive without a heartbeat.
    :param heartbeat_interval: seconds between heartbeats; ``instance_ttl / 3`` by default.
    :param cleanup_timeout: seconds allowed for a shielded update after a cancellation.
    """

    _lifetime_owner = "RedisLoadBalancer"

    def __init__(
        self,
        client_or_url: RedisClient | str,
        *,
        key_prefix: str = "genesis_trio:lb",
        instance_ttl: float = 15.0,
        heartbeat_interval: float | None = None,
        cleanup_timeout: float = CLEANUP_TIMEOUT,
    ) -> None:
        if not (instance_ttl > 0 and math.isfinite(instance_ttl)):
            raise ValueError(f"instance_ttl must be a positive number, not {instance_ttl}")
        heartbeat_interval = checked_heartbeat_interval(
            "instance_ttl", instance_ttl, heartbeat_interval
        )
        self._client = make_client(client_or_url)
        self._tag = f"{{{key_prefix}}}"
        self._instances_key = f"{self._tag}:instances"
        self._instance = uuid4().hex
        self._ttl_ms = max(1, round(instance_ttl * 1000))
        self._heartbeat_interval = heartbeat_interval
        self._cleanup_timeout = cleanup_timeout
        # Tokens of plain increment() calls, so decrement() removes one of ours.
        self._increments: dict[str, list[str]] = {}
        # Members a finished call could not remove (Redis unreachable): the
        # heartbeat retries them, so the count still comes back down.
        self._unremoved: set[tuple[str, str]] = set()
        self._scripts: dict[str, Script[Any]] | None = None

    @property
    def instance_id(self) -> str:
        return self._instance

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[RedisLoadBalancer]:
        with collapse_single_exception_group():
            client = self._client
            async with client, anyio.create_task_group() as task_group:
                self._scripts = {
                    "add": client.register_script(_ADD),
                    "remove": client.register_script(_REMOVE),
                    "counts": client.register_script(_COUNTS),
                    "beat": client.register_script(_BEAT),
                }
                await self._beat(self._ttl_ms)
                task_group.start_soon(self._heartbeat)
                try:
                    yield self
                finally:
                    task_group.cancel_scope.cancel()
                    with anyio.move_on_after(self._cleanup_timeout, shield=True):
                        try:
                            await self._retry_unremoved()
                            # Retiring the instance drops whatever it still counted.
                            await self._beat(0)
                        except connection_errors() as exc:
                            logger.warning(
                                "load balancer: could not retire; its counts expire in %gs: %s",
                                self._ttl_ms / 1000,
                                exc,
                            )
                    self._scripts = None

    def _script(self, name: str) -> Script[Any]:
        if self._scripts is None:
            raise RuntimeError("RedisLoadBalancer is used outside its `async with` block")
        return self._scripts[name]

    def _load_key(self, key: str) -> str:
        return f"{self._tag}:load:{key}"

    async def _beat(self, ttl_ms: int) -> None:
        await self._script("beat")(keys=[self._instances_key], args=[self._instance, ttl_ms])

    async def _heartbeat(self) -> None:
        errors = connection_errors()
        while True:
            await anyio.sleep(self._heartbeat_interval)
            try:
                await self._beat(self._ttl_ms)
                await self._retry_unremoved()
            except errors as exc:
                logger.warning("load balancer heartbeat failed: %s", exc)

    async def _add(self, key: str, token: str) -> int:
        reply: object = await self._script("add")(
            keys=[self._instances_key, self._load_key(key)],
            args=[self._instance, f"{self._instance}|{token}", self._ttl_ms],
        )
        return as_int(reply)

    async def _remove(self, key: str, token: str) -> int:
        reply: object = await self._script("remove")(
            keys=[self._instances_key, self._load_key(key)],
            args=[f"{self._instance}|{token}"],
        )
        return as_int(reply)

    async def _retry_unremoved(self) -> None:
        for key, token in list(self._unremoved):
            await self._remove(key, token)
            self._unremoved.discard((key, token))

    async def increment(self, key: str) -> int:
        token = uuid4().hex
        self._increments.setdefault(key, []).append(token)
        return await self._add(key, token)

    async def decrement(self, key: str) -> int:
        tokens = self._increments.get(key)
        if not tokens:
            return await self.count(key)
        token = tokens.pop()
        if not tokens:
            del self._increments[key]
        return await self._remove(key, token)

    async def least_loaded(self, keys: Sequence[str]) -> str:
        if not keys:
            raise ValueError("least_loaded() needs at least one key")
        return _pick_least_loaded(keys, await self._counts(keys))

    async def count(self, key: str) -> int:
        return (await self._counts([key]))[0]

    async def _counts(self, keys: Sequence[str]) -> list[int]:
        reply: object = await self._script("counts")(
            keys=[self._instances_key, *(self._load_key(key) for key in keys)]
        )
        if not isinstance(reply, (list, tuple)):
            raise TypeError(f"expected an array reply from Redis, got {reply!r}")
        return [as_int(value) for value in reply]

    def track(self, key: str) -> AbstractAsyncContextManager[None]:
        return self._track(key)

    @asynccontextmanager
    async def _track(self, key: str) -> AsyncIterator[None]:
        token = uuid4().hex
        try:
            with anyio.fail_after(self._cleanup_timeout, shield=True):
                await self._add(key, token)
            yield
        finally:
            # Removal is idempotent, so it runs even when the add failed or
            # timed out with its effect unknown: the count is exact either way.
            removed = False
            with anyio.move_on_after(self._cleanup_timeout, shield=True):
                try:
                    await self._remove(key, token)
                    removed = True
                except connection_errors() as exc:
                    logger.warning("load balancer: could not decrement %r yet: %s", key, exc)
            if not removed:
                self._unremoved.add((key, token))
