"""The outbox's reply slots: each reply goes to the oldest command still waiting, whatever
mix of commands, replies, withdrawals and a loss; with thousands in flight too."""

from __future__ import annotations

import anyio
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio import CommandStage, ConnectionLost, Inbound
from genesis_trio._stream._outbox import Outbox
from genesis_trio.protocol import CommandReply, Headers
from genesis_trio.testing import FakeFreeSWITCH


class _NoStream:
    async def send(self, data: bytes) -> None:
        raise AssertionError("nothing is written in this test")

    async def aclose(self) -> None:
        pass


_ops = st.lists(
    st.one_of(
        st.just(("queue", 0)),
        st.just(("reply", 0)),
        st.tuples(st.just("withdraw"), st.integers(0, 200)),
    ),
    max_size=400,
)


@settings(max_examples=200, deadline=None)
@given(ops=_ops, fail_at_end=st.booleans())
def test_replies_go_to_the_oldest_waiting_slot_as_with_a_plain_list(
    ops: list[tuple[str, int]], fail_at_end: bool
) -> None:
    async def main() -> None:
        outbox = Outbox(_NoStream(), write_timeout=None, on_broken=lambda exc: None)  # type: ignore[arg-type]
        model: list[int] = []  # the plain implementation: command numbers, oldest first
        queued = {}
        for step, (op, which) in enumerate(ops):
            if op == "queue":
                queued[step] = outbox.queue(b"api status\n\n", f"command {step}")
                model.append(step)
            elif op == "reply":
                reply = CommandReply(Headers([("Reply-Text", f"+OK {step}")]))
                taken = outbox.reply_arrived(reply)
                assert taken == bool(model)
                if model:
                    oldest = model.pop(0)
                    pending = queued.pop(oldest).pending
                    assert pending is not None
                    assert pending.reply is reply
            elif model:
                victim = model.pop(which % len(model))
                outbox.withdraw(queued.pop(victim))
            assert outbox.waiting == len(model)
        if fail_at_end:
            outbox.fail(ConnectionLost("gone"))
            assert outbox.waiting == 0
            for number in model:
                pending = queued[number].pending
                assert pending is not None
                assert isinstance(pending.error, ConnectionLost)
                assert pending.error.stage is CommandStage.NOT_SENT
            assert not outbox.reply_arrived(CommandReply(Headers([("Reply-Text", "+OK")])))

    trio.run(main)


@pytest.mark.trio
async def test_thousands_of_commands_in_flight_each_get_their_own_reply(
    fake: FakeFreeSWITCH,
) -> None:
    count = 3000
    replies: dict[int, str] = {}
    async with Inbound(fake.host, fake.port, "ClueCon") as client:

        async def call(n: int) -> None:
            replies[n] = (await client.api(f"echo reply-{n}")).strip()

        async def abandoned(n: int) -> None:
            # Some callers give up half-way (before or after their command was written):
            # the slots they leave must not shift anyone's reply.
            async with trio.open_nursery() as inner:
                inner.start_soon(client.api, f"echo never-{n}")
                await trio.lowlevel.checkpoint()
                inner.cancel_scope.cancel()

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for n in range(count):
                    tg.start_soon(call, n)
                    if n % 97 == 0:
                        tg.start_soon(abandoned, n)
            # Replies come in order: once this one is back, every earlier one is.
            assert (await client.api("echo last")).strip() == "last"
        assert client.connection.commands_waiting == 0
    assert replies == {n: f"reply-{n}" for n in range(count)}
