"""The Inbound client against the fake switch, on trio and on asyncio."""

from __future__ import annotations

import logging

import anyio
import anyio.lowlevel
import pytest

from genesis_trio import (
    AuthenticationError,
    CommandError,
    CommandReply,
    CommandStage,
    ConnectionLost,
    Event,
    Inbound,
    LocalProtocolError,
    Overflow,
    SubscriptionOverflow,
)
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.anyio


def connect(fake: FakeFreeSWITCH, password: str = "ClueCon") -> Inbound:
    return Inbound(fake.host, fake.port, password)


async def wait_for_command(fake: FakeFreeSWITCH, prefix: str) -> None:
    """Wait until the switch has read a command (a guard, not a timing claim)."""
    with anyio.fail_after(30):
        await fake.wait_for_command(prefix)


async def test_api_returns_the_response_body(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        status = await client.api("status")
        assert "is ready" in status
        assert (await client.api("echo hello world")).strip() == "hello world"


async def test_send_returns_the_raw_reply_without_raising(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        reply = await client.send("uptime")
    assert isinstance(reply, CommandReply)
    assert reply.reply_text == "-ERR command not found"
    assert not reply.ok


async def test_api_error_raises_command_error_with_reply_text(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        with pytest.raises(CommandError) as caught:
            await client.api("nosuchcommand arg1")
        assert caught.value.reply == "-ERR nosuchcommand Command not found!"
        # check=False is the opt-out for callers who want the raw body.
        raw = await client.api("nosuchcommand arg1", check=False)
        assert raw.startswith("-ERR")


async def test_wrong_password_raises_without_leaking_it(
    fake: FakeFreeSWITCH, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Sup3rSecret-pw"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as caught:
        async with connect(fake, secret):
            pass
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert secret not in caplog.text
    assert all(secret not in command for command in fake.commands_received)


async def test_connection_refused_is_a_clear_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(ConnectionLost, match="cannot connect"):
        async with Inbound("127.0.0.1", port, "ClueCon"):
            pass


async def test_bgapi_returns_the_background_job_result(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        assert "is ready" in await client.bgapi("status")
        with pytest.raises(CommandError, match="Command not found"):
            await client.bgapi("nosuchcommand")


async def test_concurrent_bgapi_jobs_get_their_own_results(fake: FakeFreeSWITCH) -> None:
    results: dict[int, str] = {}
    async with connect(fake) as client:

        async def job(n: int) -> None:
            results[n] = (await client.bgapi(f"echo job-{n}")).strip()

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(job, n)
    assert results == {n: f"job-{n}" for n in range(20)}


async def test_a_cancelled_command_does_not_steal_the_next_reply(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        with anyio.move_on_after(5) as scope:
            async with anyio.create_task_group() as tg:

                async def slow() -> None:
                    await client.api("msleep 300")

                tg.start_soon(slow)
                await wait_for_command(fake, "api msleep")
                tg.cancel_scope.cancel()
            # The msleep reply is still in flight; it must not answer this command.
            assert (await client.api("echo second")).strip() == "second"
        assert not scope.cancelled_caught


async def test_subscribe_receives_only_the_named_events(fake: FakeFreeSWITCH) -> None:
    fake.add_destination("user/1000", Destination(answer_after=0))
    async with (
        connect(fake) as client,
        client.subscribe("CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE") as events,
    ):
        uuid = (await client.api("originate user/1000 &park")).removeprefix("+OK ").strip()
        answer = await events.receive()
        assert answer.name == "CHANNEL_ANSWER"
        assert answer.unique_id == uuid
        await client.api(f"uuid_kill {uuid}")
        done = await events.receive()
        assert done.name == "CHANNEL_HANGUP_COMPLETE"
        assert done.hangup_cause == "NORMAL_CLEARING"


async def test_custom_subclass_subscription(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client, client.subscribe("esl::test") as events:
        await client.sendevent(
            "CUSTOM",
            {"Event-Subclass": "esl::test", "X-Test": "a b&c"},
            body="hello\nworld\n",
        )
        event = await events.receive()
    assert event.subclass == "esl::test"
    assert event["X-Test"] == "a b&c"
    assert event.body == "hello\nworld\n"


async def test_handlers_run_and_a_failing_handler_does_not_kill_the_connection(
    fake: FakeFreeSWITCH, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    second = anyio.Event()

    async def flaky(event: Event) -> None:
        seen.append(event["X-N"])
        if event["X-N"] == "1":
            raise RuntimeError("handler bug")
        second.set()

    async with connect(fake) as client:
        client.on("CUSTOM", flaky)
        await client.events("CUSTOM", "demo::x")
        for n in ("1", "2"):
            await client.sendevent("CUSTOM", {"Event-Subclass": "demo::x", "X-N": n})
        with anyio.fail_after(5):
            await second.wait()
        assert (await client.api("echo still alive")).strip() == "still alive"
    assert seen == ["1", "2"]
    assert "handler bug" in caplog.text


async def test_connection_loss_fails_everything_at_once(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        async with client.subscribe("ALL") as events:
            failures: list[BaseException] = []

            async def pending_api() -> None:
                try:
                    await client.api("msleep 10000")
                except ConnectionLost as exc:
                    failures.append(exc)

            async def pending_events() -> None:
                try:
                    async for _ in events:
                        pass
                except ConnectionLost as exc:
                    failures.append(exc)

            with anyio.fail_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(pending_api)
                    tg.start_soon(pending_events)
                    await wait_for_command(fake, "api msleep")
                    await fake.drop_connections()
        assert len(failures) == 2
        api_failure = next(f for f in failures if isinstance(f, ConnectionLost) and f.stage)
        assert api_failure.stage is CommandStage.SENT
        with pytest.raises(ConnectionLost) as after:
            await client.api("status")
        assert after.value.stage is CommandStage.NOT_SENT


async def test_newline_in_a_command_is_refused_before_writing(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        before = list(fake.commands_received)
        with pytest.raises(LocalProtocolError):
            await client.api("status\n\nexit")
        with pytest.raises(LocalProtocolError):
            await client.sendevent("CUSTOM", {"X-Evil": "a\nEvent-Name: HEARTBEAT"})
        with pytest.raises(LocalProtocolError):
            await client.filter("Unique-ID", "x\r\nexit")
        assert fake.commands_received == before
        assert (await client.api("echo ok")).strip() == "ok"


async def test_leaving_the_block_sends_exit_and_closes(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.api("status")
    assert fake.commands_received[-1] == "exit"
    assert not client.is_connected


async def test_an_exception_in_the_body_propagates_unwrapped(fake: FakeFreeSWITCH) -> None:
    with pytest.raises(KeyError):
        async with connect(fake):
            raise KeyError("user bug")


async def test_overflow_error_policy_fails_a_slow_subscriber(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client, client.subscribe("esl::burst", max_buffer=3) as events:
        for n in range(5):
            await client.sendevent("CUSTOM", {"Event-Subclass": "esl::burst", "X-N": str(n)})
        await client.api("echo sync")  # every event above has been read by now
        received = [(await events.receive())["X-N"] for _ in range(3)]
        assert received == ["0", "1", "2"]
        with pytest.raises(SubscriptionOverflow):
            await events.receive()


async def test_overflow_drop_oldest_keeps_the_latest(fake: FakeFreeSWITCH) -> None:
    async with (
        connect(fake) as client,
        client.subscribe("esl::burst", max_buffer=2, overflow=Overflow.DROP_OLDEST) as events,
    ):
        for n in range(5):
            await client.sendevent("CUSTOM", {"Event-Subclass": "esl::burst", "X-N": str(n)})
        await client.api("echo sync")
        assert [(await events.receive())["X-N"] for _ in range(2)] == ["3", "4"]
        assert events.dropped == 3


async def test_switch_side_filter_limits_what_is_sent(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client, client.subscribe("f::t") as events:
        await client.filter("X-Keep", "yes")
        for keep in ("no", "yes"):
            await client.sendevent("CUSTOM", {"Event-Subclass": "f::t", "X-Keep": keep})
        with anyio.fail_after(5):
            event = await events.receive()
        assert event["X-Keep"] == "yes"
        await client.api("echo sync")  # anything the switch sent is read by now
        assert events.receive_nowait() is None


async def test_logs_subscription(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client, client.subscribe_logs(7) as logs:
        await client.api("log INFO hello from the test")
        line = await logs.receive()
    assert "hello from the test" in line.body
    assert line.level == 6


async def test_concurrent_handlers_overlap_up_to_the_bound(fake: FakeFreeSWITCH) -> None:
    release = anyio.Event()
    running: list[str] = []
    finished: list[str] = []
    two_running = anyio.Event()
    all_finished = anyio.Event()

    async def slow(event: Event) -> None:
        running.append(event["X-N"])
        if len(running) == 2:
            two_running.set()
        await release.wait()
        finished.append(event["X-N"])
        if len(finished) == 3:
            all_finished.set()

    async with connect(fake) as client:
        client.on("CUSTOM", slow, concurrent=True, max_concurrent=2)
        await client.events("CUSTOM", "demo::c")
        for n in ("1", "2", "3"):
            await client.sendevent("CUSTOM", {"Event-Subclass": "demo::c", "X-N": n})
        with anyio.fail_after(5):
            await two_running.wait()
        await client.api("echo sync")  # the third event has arrived by now
        # The bound holds: the third call waits for a free worker.
        assert running == ["1", "2"]
        release.set()
        with anyio.fail_after(5):
            await all_finished.wait()
    assert sorted(finished) == ["1", "2", "3"]


async def test_concurrent_commands_each_get_their_own_reply(fake: FakeFreeSWITCH) -> None:
    replies: dict[int, str] = {}
    async with connect(fake) as client:

        async def call(n: int) -> None:
            replies[n] = (await client.api(f"echo reply-{n}")).strip()

        async with anyio.create_task_group() as tg:
            for n in range(50):
                tg.start_soon(call, n)
    assert replies == {n: f"reply-{n}" for n in range(50)}
