"""The in-memory queue on both AnyIO backends: it is written against AnyIO, not trio."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from genesis_trio.queue import Queue, QueueTimeoutError

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _settle() -> None:
    # Every started task has reached its wait.
    await anyio.wait_all_tasks_blocked()


async def test_fifo_bound_and_cancelled_waiter() -> None:
    queue = Queue()
    served: list[str] = []
    release = anyio.Event()
    holding = anyio.Event()

    async def holder() -> None:
        async with queue.slot("support", max_concurrent=2):
            served.append("holder")
            holding.set()
            await release.wait()

    async def waiter(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            async with queue.slot("support", max_concurrent=2):
                served.append(name)

    doomed = anyio.CancelScope()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            async with queue.slot("support", max_concurrent=2):
                task_group.start_soon(holder)
                await holding.wait()
                for name in ("a", "doomed", "b", "c"):
                    task_group.start_soon(
                        waiter, name, doomed if name == "doomed" else anyio.CancelScope()
                    )
                    await _settle()
                assert await queue.depth("support") == 4
                doomed.cancel()
                await _settle()
                assert await queue.depth("support") == 3
            release.set()

    assert served == ["holder", "a", "b", "c"]
    assert (await queue.depth("support"), await queue.in_use("support")) == (0, 0)


async def test_timeout_is_a_timeout_error() -> None:
    queue = Queue()
    async with queue.slot("support"):
        with pytest.raises(TimeoutError):
            async with queue.slot("support", timeout=0.01):
                pass
        assert await queue.depth("support") == 0
    with pytest.raises(QueueTimeoutError):
        async with queue.slot("support"), queue.slot("support", timeout=0):
            pass
