"""What the Redis queue backend and the Redis load balancer share.

coredis is an optional dependency (the ``redis`` extra): it is imported only
when a Redis object is actually built, so ``import genesis_trio`` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

if TYPE_CHECKING:
    import coredis

__all__ = [
    "LUA_NOW_MS",
    "RedisClient",
    "as_int",
    "as_text",
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
