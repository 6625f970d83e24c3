"""The connection core against a real switch (issue 10): its shutdown notice fails what is
pending, and a switch that stops reading cannot hold a caller's cancellation hostage."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from genesis_trio import CommandStage, ConnectionLost
from real_switch import RealSwitch

pytestmark = pytest.mark.trio

BIG = "x" * (32 << 20)  # far more than loopback socket buffers hold


async def test_switch_shutdown_fails_an_async_for_and_a_pending_job(
    private_freeswitch: RealSwitch,
) -> None:
    """FreeSWITCH says "The system is being shut down." then closes: that is a loss for
    whatever is pending, not a clean end as if we had said exit."""
    outcomes: dict[str, object] = {}
    async with (
        private_freeswitch.inbound() as watcher,
        private_freeswitch.inbound() as admin,
        watcher.subscribe("ALL") as events,
    ):

        async def iterate() -> None:
            try:
                async for _ in events:
                    pass
                outcomes["async for"] = "ended as if we had said exit"
            except ConnectionLost as exc:
                outcomes["async for"] = exc

        async def pending_job() -> None:
            try:
                outcomes["job"] = await watcher.bgapi("msleep 120000")
            except ConnectionLost as exc:
                outcomes["job"] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(iterate)
            nursery.start_soon(pending_job)
            with trio.fail_after(30):
                await trio.testing.wait_all_tasks_blocked()  # the bgapi is written
                # Replies come in order: once this returns, the bgapi was accepted.
                await watcher.api("status")
                with contextlib.suppress(ConnectionLost):
                    await admin.api("fsctl shutdown")
                await watcher.connection.closed.wait()
    assert isinstance(outcomes["async for"], ConnectionLost), outcomes
    assert isinstance(outcomes["job"], ConnectionLost), outcomes
    assert outcomes["job"].stage is CommandStage.ACCEPTED
    reason = str(watcher.connection.lost_reason)
    # mod_event_socket's send_disconnect writes the notice's header and its text in two
    # writes, without the listener's lock, from the shutdown thread: an event frame the
    # listener thread writes can land between them, and the "text" read is then the start
    # of that frame (seen once: "... (Content-Length: 550)").
    assert "shut down" in reason or "(Content-Length: " in reason, reason


@contextlib.contextmanager
def stopped(switch: RealSwitch) -> Iterator[None]:
    """SIGSTOP our private switch (it stops reading its sockets), SIGCONT it after."""
    assert switch.pid is not None
    os.kill(switch.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(switch.pid, signal.SIGCONT)


async def test_a_switch_that_stops_reading_cannot_delay_a_cancellation(
    private_freeswitch: RealSwitch,
) -> None:
    async with private_freeswitch.inbound() as client:
        await client.api("status")
        scope = trio.CancelScope()

        async def big_command() -> None:
            with scope:
                await client.api("echo " + BIG)

        with stopped(private_freeswitch):
            # The old write was shielded: the cancellation waited for the 30 s write deadline.
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(big_command)
                    await trio.testing.wait_all_tasks_blocked()  # stuck: the switch reads nothing
                    scope.cancel()
            assert scope.cancelled_caught
            assert not client.is_connected
            assert "cancelled half-way" in str(client.connection.lost_reason)
        with pytest.raises(ConnectionLost) as caught:
            await client.api("status")
        assert caught.value.stage is CommandStage.NOT_SENT
