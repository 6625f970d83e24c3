"""What an idle Inbound connection keeps allocated (issue 15: RSS per idle connection).

Measured with tracemalloc over the allocations made while entering the
clients (the frames of ``Inbound.__aenter__``), so the in-process fake
switch's own allocations do not count. The bound is generous: it catches an
eager per-connection structure of a few KiB (a private random generator, an
empty WeakSet, a deque) coming back, not a byte here or there.
"""

from __future__ import annotations

import gc
import tracemalloc

import anyio
import pytest
import trio

from genesis_trio import Inbound
from genesis_trio.testing import FakeFreeSWITCH

_CLIENTS = 40
# Measured: ~6.5 KiB per client (mostly trio and AnyIO's task, events and cancel
# scopes), ~10 KiB with a random.Random, a WeakSet and a deque per client.
_BOUND_PER_CLIENT = 8 * 1024


@pytest.mark.trio
async def test_an_idle_inbound_keeps_no_eager_per_connection_structures(
    fake: FakeFreeSWITCH,
) -> None:
    release = trio.Event()

    async def hold(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with Inbound(fake.host, fake.port, "ClueCon"):
            task_status.started()
            await release.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(hold)  # the first one warms every cache up
        gc.collect()
        tracemalloc.start(64)
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(_CLIENTS):
                await nursery.start(hold)
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        release.set()
    ours = [tracemalloc.Filter(True, "*genesis_trio/_inbound.py", all_frames=True)]
    grown = sum(
        stat.size_diff
        for stat in after.filter_traces(ours).compare_to(before.filter_traces(ours), "filename")
    )
    assert grown / _CLIENTS < _BOUND_PER_CLIENT, f"{grown / _CLIENTS:.0f} bytes per client"


def _events_held_by(root: object) -> int:
    """The anyio Events reachable from ``root`` through the library's own objects.

    The walk enters genesis_trio objects and plain containers only, so it never
    wanders through trio's task tree into the fake switch or another client.
    """
    seen: set[int] = set()
    todo = [root]
    found = 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, anyio.Event):
            found += 1
            continue
        module = type(obj).__module__
        if module.startswith("genesis_trio") or type(obj) in (dict, list, tuple, set):
            todo.extend(gc.get_referents(obj))
    return found


@pytest.mark.trio
async def test_an_idle_inbound_makes_its_ready_and_auth_events_only_for_waiters(
    fake: FakeFreeSWITCH,
) -> None:
    # Each Event is ~300 bytes on trio. An idle client keeps one, its connection's
    # ``closed``: readiness and the auth request are remembered as flags until
    # someone waits for them.
    release = trio.Event()

    async def hold(*, task_status: trio.TaskStatus[Inbound] = trio.TASK_STATUS_IGNORED) -> None:
        async with Inbound(fake.host, fake.port, "ClueCon") as client:
            task_status.started(client)
            await release.wait()

    async with trio.open_nursery() as nursery:
        client = await nursery.start(hold)
        assert client.ready
        assert _events_held_by(client) == 1
        with trio.fail_after(5):
            await client.wait_ready()  # ready already: returns at once
        release.set()
