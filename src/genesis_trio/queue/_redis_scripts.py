"""Lua scripts of the Redis queue backend: every change to a line is one atomic script.

Keys of one queue (one hash tag, so a Redis Cluster keeps them on one node):

* ``waiting``  ZSET ticket -> arrival number: the line, oldest first
* ``leases``   ZSET ticket -> expiry (ms, server clock) of each waiter
* ``holders``  ZSET ticket -> expiry (ms, server clock) of each held slot
* ``meta``     HASH ``limit`` (the bound) and ``seq`` (the arrival counter)

ARGV[1] is always the pub/sub channel on which granted tickets are announced,
ARGV[2] the *fence*: seconds after the Redis server started during which no
slot is granted (see :mod:`._redis` on restarts).

Slots are granted inside the scripts, in line order, the moment one is free:
a released, timed-out or expired slot goes to the oldest waiter even if that
waiter's process is slow to notice. A freshly granted slot keeps the lease
its ticket had as a waiter until its owner's next poll renews it.
"""

from __future__ import annotations

from typing import Final

from ._redis_support import LUA_NOW_MS

__all__ = ["JOIN", "LEAVE", "POLL", "STATUS"]

_PRELUDE: Final = (
    LUA_NOW_MS
    + """
local waiting, leases, holders, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel, fence = ARGV[1], tonumber(ARGV[2])

-- A Redis that started less than `fence` seconds ago may have lost (no
-- persistence, or not the last writes) slots whose holders still run: they
-- learn it at their next renewal or when their own lease runs out, which is
-- before the fence ends. Until then nothing is granted. uptime_in_seconds
-- counts whole seconds; the fence has a second of slack for that.
local function fenced()
  local info = redis.call('INFO', 'server')
  local uptime = tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
  return uptime == nil or uptime < fence
end

-- Tickets whose owner stopped renewing (the process died or lost Redis for
-- longer than its lease) leave the line or give their slot back.
local function reap(now)
  local lapsed = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  for _, ticket in ipairs(lapsed) do
    redis.call('ZREM', waiting, ticket)
  end
  if #lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  end
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
end

local function grant(now)
  if fenced() then
    return
  end
  local limit = tonumber(redis.call('HGET', meta, 'limit') or '0')
  local free = limit - redis.call('ZCARD', holders)
  if free <= 0 then
    return
  end
  for _, ticket in ipairs(redis.call('ZRANGE', waiting, 0, free - 1)) do
    local expiry = redis.call('ZSCORE', leases, ticket) or now
    redis.call('ZREM', waiting, ticket)
    redis.call('ZREM', leases, ticket)
    redis.call('ZADD', holders, expiry, ticket)
    redis.call('PUBLISH', channel, ticket)
  end
end

-- An idle queue forgets its bound, so it may be reused with another one.
local function forget_if_idle()
  if redis.call('ZCARD', waiting) == 0 and redis.call('ZCARD', holders) == 0 then
    redis.call('DEL', meta)
  end
end
"""
)

#: ARGV: channel, fence, ticket, limit, lease_ms.
#: Returns {state, depth}: state 1 granted, 0 waiting, -1 bound mismatch (depth = the bound).
#: Idempotent, so a join retried after a lost reply cannot queue a ticket twice.
JOIN: Final = (
    _PRELUDE
    + """
local ticket, limit, lease = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
reap(now)
if redis.call('ZSCORE', holders, ticket) then
  return {1, 0}
end
if redis.call('ZSCORE', waiting, ticket) then
  redis.call('ZADD', leases, now + lease, ticket)
  return {0, redis.call('ZCARD', waiting)}
end
forget_if_idle()
local current = redis.call('HGET', meta, 'limit')
if current and tonumber(current) ~= limit then
  return {-1, tonumber(current)}
end
redis.call('HSET', meta, 'limit', limit)
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('ZADD', waiting, seq, ticket)
redis.call('ZADD', leases, now + lease, ticket)
local depth = redis.call('ZCARD', waiting)
grant(now)
if redis.call('ZSCORE', holders, ticket) then
  return {1, depth}
end
return {0, depth}
"""
)

#: ARGV: channel, fence, ticket, lease_ms. Renews the ticket's lease, whether it waits or holds.
#: Returns 1 holding, 0 waiting, -1 gone (its lease lapsed and it was reaped).
POLL: Final = (
    _PRELUDE
    + """
local ticket, lease = ARGV[3], tonumber(ARGV[4])
local now = now_ms()
reap(now)
grant(now)
if redis.call('ZSCORE', holders, ticket) then
  redis.call('ZADD', holders, now + lease, ticket)
  return 1
end
if redis.call('ZSCORE', waiting, ticket) then
  redis.call('ZADD', leases, now + lease, ticket)
  return 0
end
forget_if_idle()
return -1
"""
)

#: ARGV: channel, fence, ticket. Drops the ticket wherever it is; hands its slot on.
LEAVE: Final = (
    _PRELUDE
    + """
local ticket = ARGV[3]
redis.call('ZREM', waiting, ticket)
redis.call('ZREM', leases, ticket)
redis.call('ZREM', holders, ticket)
local now = now_ms()
reap(now)
grant(now)
forget_if_idle()
return 1
"""
)

#: ARGV: channel, fence. Returns {waiting, holding} once lapsed leases are reaped.
STATUS: Final = (
    _PRELUDE
    + """
local now = now_ms()
reap(now)
grant(now)
forget_if_idle()
return {redis.call('ZCARD', waiting), redis.call('ZCARD', holders)}
"""
)
