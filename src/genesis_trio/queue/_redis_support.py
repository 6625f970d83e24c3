"""What the Redis queue backend and the Redis load balancer share.

coredis is an optional dependency (the ``redis`` extra): it is imported only
when a Redis object is actually built, so ``import genesis_trio`` works without it.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self, TypeAlias

if TYPE_CHECKING:
    import coredis

__all__ = [
    "LUA_NOW_MS",
    "RedisClient",
    "SingleUseLifetime",
    "as_int",
    "as_text",
    "checked_heartbeat_interval",
    "connection_errors",
    "make_client",
]

RedisClient: TypeAlias = "coredis.Redis[Any]"

# Lease expiry is computed on the Redis server's clock, never on a client's:
# machines whose clocks disagree still agree on when a lease ran out.
LUA_NOW_MS: Final = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""


def make_client(client_or_url: RedisClient | str) -> RedisClient:
    """A coredis client from a ``redis://`` URL, or the client given."""
    if not isinstance(client_or_url, str):
        return client_or_url
    try:
        import coredis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the Redis backends need coredis: install genesis-trio[redis]") from exc
    return coredis.Redis.from_url(client_or_url)


def connection_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "Redis could not be reached", as opposed to a bad command."""
    from coredis.exceptions import ConnectionError as RedisConnectionError

    return (RedisConnectionError, OSError, TimeoutError)


def as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, str)):
        return int(value)
    raise TypeError(f"expected an integer reply from Redis, got {value!r}")


def checked_heartbeat_interval(
    ttl_name: str, ttl: float, heartbeat_interval: float | None
) -> float:
    """The heartbeat interval: ``ttl / 3`` unless given, and always shorter than the ttl."""
    if heartbeat_interval is None:
        heartbeat_interval = ttl / 3
    if not 0 < heartbeat_interval < ttl:
        raise ValueError(
            f"heartbeat_interval must be between 0 and {ttl_name} ({ttl}), not {heartbeat_interval}"
        )
    return heartbeat_interval


class SingleUseLifetime:
    """``async with`` for an object whose connections and tasks live in its ``_run()``.

    One ``async with`` block at a time: a second would share (and then close)
    the first one's connections.
    """

    #: The class name the "already in use" error gives.
    _lifetime_owner: ClassVar[str]
    _lifetime: AbstractAsyncContextManager[Any] | None = None

    def _run(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        if self._lifetime is not None:
            raise RuntimeError(f"{self._lifetime_owner} is already in use by an `async with` block")
        lifetime = self._run()
        entered: Self = await lifetime.__aenter__()
        self._lifetime = lifetime
        return entered

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        lifetime, self._lifetime = self._lifetime, None
        assert lifetime is not None, "__aexit__ without __aenter__"
        return await lifetime.__aexit__(exc_type, exc, tb)
