"""A place in line owned by a call: ``queue.slot(..., channel=...)``.

The caller hanging up, or the connection that carries the call dropping, takes
the waiter out of the line at once (and frees a holder's slot), instead of the
wait running out its own timeout with the place kept.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import Channel, ChannelHangup, ConnectionLost, Inbound, Outbound, Session
from genesis_trio.queue import Queue
from genesis_trio.testing import Destination, FakeFreeSWITCH
from outbound_serving import serving

pytestmark = pytest.mark.trio


async def _hold_the_only_slot(
    queue: Queue, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    async with queue.slot("support"):
        task_status.started()
        await trio.sleep_forever()


async def _handler_waiting_in_line(
    fake: FakeFreeSWITCH, queue: Queue, end_the_call: str
) -> list[BaseException]:
    raised: list[BaseException] = []
    in_line = trio.Event()
    done = trio.Event()

    async def handler(session: Session) -> None:
        try:
            async with queue.slot("support", timeout=60, channel=session.channel):
                pytest.fail("served while the only slot was held")
        except BaseException as exc:
            raised.append(exc)
            raise
        finally:
            done.set()

    async with trio.open_nursery() as nursery, serving(Outbound(handler, port=0)) as address:
        await nursery.start(_hold_the_only_slot, queue)
        call = await fake.call_socket(address)
        while await queue.depth("support") != 1:
            await trio.testing.wait_all_tasks_blocked()
        in_line.set()
        started = trio.current_time()
        if end_the_call == "hangup":
            await fake.hangup(call.uuid)
        else:
            await fake.drop_connections()
        await done.wait()
        # Left the line at once (virtual time: the wait's own 60 s never ran).
        assert trio.current_time() - started < 60
        assert await queue.depth("support") == 0
        nursery.cancel_scope.cancel()
    return raised


async def test_a_caller_who_hangs_up_leaves_the_line_at_once(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    raised = await _handler_waiting_in_line(fake, Queue(), "hangup")
    [gone] = raised
    assert isinstance(gone, ChannelHangup)


async def test_a_dropped_socket_takes_the_waiter_out_of_the_line(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    raised = await _handler_waiting_in_line(fake, Queue(), "drop")
    [gone] = raised
    assert isinstance(gone, ConnectionLost)


async def test_a_holders_hangup_frees_its_slot(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=0))
    queue = Queue()
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "user/1000")
        body_cancelled = False

        async def hold_until_the_caller_hangs_up() -> None:
            nonlocal body_cancelled
            async with queue.slot("support", channel=channel) as slot:
                assert slot.item_id == channel.uuid
                assert await queue.in_use("support") == 1
                await fake.hangup(channel.uuid)
                try:
                    await trio.sleep_forever()
                except trio.Cancelled:
                    body_cancelled = True
                    raise

        with pytest.raises(ChannelHangup) as caught:
            await hold_until_the_caller_hangs_up()
        assert body_cancelled
        assert caught.value.uuid == channel.uuid
        assert await queue.in_use("support") == 0


async def test_a_call_already_over_never_joins(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=0))
    queue = Queue()
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "user/1000")
        await channel.hangup()
        with pytest.raises(ChannelHangup):
            async with queue.slot("support", channel=channel):
                await trio.sleep_forever()
        assert (await queue.depth("support"), await queue.in_use("support")) == (0, 0)


async def test_a_block_that_ends_normally_is_not_turned_into_a_hangup(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=0))
    queue = Queue()
    agents = queue.semaphore("support", 1)
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "user/1000")
        async with agents(channel=channel) as slot:
            assert slot.item_id == channel.uuid
        await channel.hangup()
        assert await queue.in_use("support") == 0
