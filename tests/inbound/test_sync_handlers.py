"""Plain ``def`` handlers run in worker threads, never on the event loop."""

from __future__ import annotations

import logging
import threading

import pytest
import trio
import trio.testing

from genesis_trio import Consumer, Event, Inbound, filtrate
from genesis_trio.testing import FakeFreeSWITCH

pytestmark = pytest.mark.trio


def custom(fake: FakeFreeSWITCH, subclass: str, **headers: str) -> Event:
    return fake.build_event("CUSTOM", {"Event-Subclass": subclass, **headers})


async def wait_in_thread(event: threading.Event) -> None:
    """Wait for a threading.Event without blocking the loop (and with a deadline)."""
    with trio.fail_after(10):
        await trio.to_thread.run_sync(event.wait, abandon_on_cancel=True)


async def test_a_blocking_sync_handler_does_not_hold_up_other_handlers(
    fake: FakeFreeSWITCH,
) -> None:
    release = threading.Event()
    blocking_started = threading.Event()
    threads: list[int] = []
    other_ran = trio.Event()
    sync_other_ran = threading.Event()

    def blocking(event: Event) -> None:
        threads.append(threading.get_ident())
        blocking_started.set()
        release.wait(10)

    async def other(event: Event) -> None:
        other_ran.set()

    def sync_other(event: Event) -> None:
        sync_other_ran.set()

    async with Inbound(fake.host, fake.port, "ClueCon") as client:
        client.on("demo::block", blocking)
        client.on("demo::other", other)
        client.on("demo::sync", sync_other)
        await client.events("CUSTOM", "demo::block", "demo::other", "demo::sync")
        fake.fire(custom(fake, "demo::block"))
        await wait_in_thread(blocking_started)
        # The blocking handler holds a thread; the loop, async and sync handlers go on.
        fake.fire(custom(fake, "demo::other"))
        fake.fire(custom(fake, "demo::sync"))
        with trio.fail_after(10):
            await other_ran.wait()
            assert await client.api("status")
        await wait_in_thread(sync_other_ran)
        assert not release.is_set()
        release.set()
    assert threads
    assert threads[0] != threading.get_ident()


async def test_a_failing_sync_handler_is_logged_and_the_next_event_handled(
    fake: FakeFreeSWITCH, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    second = threading.Event()

    def handler(event: Event) -> None:
        seen.append(event["X-N"])
        if event["X-N"] == "1":
            raise ValueError("boom in a thread")
        second.set()

    with caplog.at_level(logging.ERROR, logger="genesis_trio"):
        async with Inbound(fake.host, fake.port, "ClueCon") as client:
            client.on("demo::fail", handler)
            await client.events("CUSTOM", "demo::fail")
            fake.fire(custom(fake, "demo::fail", **{"X-N": "1"}))
            fake.fire(custom(fake, "demo::fail", **{"X-N": "2"}))
            await wait_in_thread(second)
    assert seen == ["1", "2"]
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert "handler" in failures[0].getMessage()
    assert "boom in a thread" in caplog.text


async def test_handler_threads_limits_the_sync_handlers_running_at_once(
    fake: FakeFreeSWITCH,
) -> None:
    release = threading.Event()
    started = threading.Event()

    def blocking(event: Event) -> None:
        started.set()
        release.wait(10)

    async with Inbound(fake.host, fake.port, "ClueCon", handler_threads=1) as client:
        client.on("demo::b", blocking, concurrent=True)
        await client.events("CUSTOM", "demo::b")
        fake.fire(custom(fake, "demo::b"))
        fake.fire(custom(fake, "demo::b"))
        await wait_in_thread(started)
        with trio.fail_after(10):
            while client.handler_limiter.statistics().tasks_waiting != 1:
                await trio.testing.wait_all_tasks_blocked()
        assert client.handler_limiter.borrowed_tokens == 1
        release.set()


async def test_leaving_the_block_waits_for_a_running_sync_handler(fake: FakeFreeSWITCH) -> None:
    """A thread cannot be cancelled: the owner waits for it rather than abandon it."""
    release = threading.Event()
    started = threading.Event()
    finished: list[str] = []
    left = trio.Event()

    def slow(event: Event) -> None:
        started.set()
        release.wait(10)
        finished.append("handler")

    async def use_client() -> None:
        async with Inbound(fake.host, fake.port, "ClueCon") as client:
            client.on("demo::slow", slow)
            await client.events("CUSTOM", "demo::slow")
            fake.fire(custom(fake, "demo::slow"))
            await wait_in_thread(started)
        finished.append("left")
        left.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(use_client)
        await wait_in_thread(started)
        await trio.testing.wait_all_tasks_blocked()
        assert not left.is_set()
        release.set()
        with trio.fail_after(10):
            await left.wait()
    assert finished == ["handler", "left"]


async def test_consumer_sync_handlers_with_filtrate_run_in_threads(fake: FakeFreeSWITCH) -> None:
    app = Consumer(fake.host, fake.port, "ClueCon", concurrent=False)
    seen: list[tuple[str, bool]] = []
    done = threading.Event()
    loop_thread = threading.get_ident()

    @app.handle("demo::c")
    @filtrate("X-Who", "alice")
    def only_alice(event: Event) -> None:
        seen.append((event["X-N"], threading.get_ident() != loop_thread))
        if event["X-N"] == "3":
            done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(app.serve)
        fake.fire(custom(fake, "demo::c", **{"X-Who": "alice", "X-N": "1"}))
        fake.fire(custom(fake, "demo::c", **{"X-Who": "bob", "X-N": "2"}))
        fake.fire(custom(fake, "demo::c", **{"X-Who": "alice", "X-N": "3"}))
        await wait_in_thread(done)
        nursery.cancel_scope.cancel()
    assert seen == [("1", True), ("3", True)]


async def test_filtrate_keeps_a_sync_handler_sync() -> None:
    from genesis_trio._dispatch import is_async_callable

    @filtrate("X-Who", "alice")
    def plain(event: Event) -> None:
        pass

    @filtrate("X-Who", "alice")
    async def coroutine(event: Event) -> None:
        pass

    assert not is_async_callable(plain)
    assert is_async_callable(coroutine)
