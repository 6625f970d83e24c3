"""Serving, connections, scripting hooks and the benchmark source."""

from __future__ import annotations

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from genesis_trio.protocol import DisconnectNotice, Event
from genesis_trio.testing import Destination, FakeFreeSWITCH, captured_events

from ._raw_client import RawClient, connect

pytestmark = pytest.mark.trio


async def test_serve_reports_its_address_and_closes_everything_when_cancelled() -> None:
    fake = FakeFreeSWITCH(password="s3cret")
    fake.add_destination("user/1000")
    async with anyio.create_task_group() as task_group:
        host, port = await task_group.start(fake.serve)
        assert (host, port) == (fake.host, fake.port)
        assert host == "127.0.0.1"
        assert port > 0
        stream = await anyio.connect_tcp(host, port)
        client = RawClient(stream)
        await client.read()
        assert (await client.command("auth s3cret")).reply_text == "+OK accepted"
        await client.api("originate user/1000 &park")
        assert len(fake.channels) == 1
        task_group.cancel_scope.cancel()
    # The client sees the socket close; no task of the fake is left.
    assert await client.read_until_closed() == []
    assert client.closed
    await stream.aclose()
    assert fake.connection_count == 0


async def test_a_fake_serves_once_at_a_time(fake: FakeFreeSWITCH) -> None:
    with pytest.raises(RuntimeError):
        await fake.serve()


async def test_drop_connections_and_wait_for_reconnection(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as first, connect(fake) as second:
        await fake.wait_for_connections(2)
        assert (fake.connection_count, fake.authenticated_count) == (2, 2)
        await fake.drop_connections()
        assert fake.connection_count == 0
        for client in (first, second):
            messages = await client.read_until_closed()
            assert not any(isinstance(message, DisconnectNotice) for message in messages)

    async with anyio.create_task_group() as task_group:
        waiter_done = anyio.Event()

        async def wait() -> None:
            await fake.wait_for_connections(1)
            waiter_done.set()

        task_group.start_soon(wait)
        async with connect(fake, password=None):
            assert not waiter_done.is_set()
        async with connect(fake):
            await waiter_done.wait()
    assert fake.authentications == 3


async def test_drop_with_reset(fake: FakeFreeSWITCH) -> None:
    stream = await anyio.connect_tcp(fake.host, fake.port)
    async with stream:
        await stream.receive()
        await fake.drop_connections(reset=True)
        with pytest.raises((anyio.BrokenResourceError, anyio.EndOfStream)):
            await _receive_until_error(stream)


async def _receive_until_error(stream: anyio.abc.SocketStream) -> None:
    while True:
        await stream.receive()


async def test_commands_received_hide_passwords(fake: FakeFreeSWITCH) -> None:
    async with connect(fake) as client:
        await client.api("echo hi")
        await client.command("userauth bob@example:pw")
    assert fake.commands_received == ["auth ******", "api echo hi", "userauth ******"]


async def test_wait_for_command_returns_one_received_or_waits_for_it(
    fake: FakeFreeSWITCH,
) -> None:
    found: list[str] = []

    async def wait_for_status() -> None:
        found.append(await fake.wait_for_command("api status"))

    with anyio.fail_after(10):
        async with connect(fake) as client, anyio.create_task_group() as tasks:
            assert await fake.wait_for_command("auth") == "auth ******"
            tasks.start_soon(wait_for_status)
            await client.api("echo hi")
            await anyio.wait_all_tasks_blocked()
            assert found == []
            await client.api("status")
    assert found == ["api status"]


async def test_registered_apis_script_any_command(fake: FakeFreeSWITCH) -> None:
    calls: list[str] = []

    def sync_handler(argument: str) -> str:
        calls.append(argument)
        return f"+OK {argument}\n"

    async def async_handler(argument: str) -> str:
        await anyio.lowlevel.checkpoint()
        return "FreeSWITCH Version 9.9.9\n"

    fake.register_api("my_command", sync_handler)
    fake.register_api("version", async_handler)
    with pytest.raises(ValueError):
        fake.register_api("two words", sync_handler)
    async with connect(fake) as client:
        assert await client.api("my_command a b") == "+OK a b\n"
        assert await client.api("version") == "FreeSWITCH Version 9.9.9\n"
        await client.command("event plain BACKGROUND_JOB")
        reply = await client.command("bgapi my_command c")
        job = await client.next_event()
        assert (job.job_uuid, job.body) == (reply.job_uuid, "+OK c\n")
    assert calls == ["a b", "c"]
    assert await fake.api("my_command d") == "+OK d\n"


async def test_captured_events_are_the_recorded_lifecycle() -> None:
    plain = captured_events()
    assert len(plain) == 137
    assert len(captured_events("json")) == 138
    assert len(captured_events("xml")) == 137
    counts = {name: sum(1 for e in plain if e.name == name) for name in ("CHANNEL_CREATE",)}
    assert counts == {"CHANNEL_CREATE": 4}
    assert plain[0].name == "CODEC"
    assert captured_events() is not captured_events()
    with pytest.raises(ValueError):
        captured_events("yaml")  # type: ignore[arg-type]


async def test_blast_sends_everything_subscribed(fake: FakeFreeSWITCH) -> None:
    events = captured_events()
    wanted = [event for event in events if event.name == "CHANNEL_ANSWER"]
    async with connect(fake) as everything, connect(fake) as answers:
        await everything.command("event json ALL")
        await answers.command("event plain CHANNEL_ANSWER")
        async with anyio.create_task_group() as task_group:
            sent: list[int] = []

            async def blast() -> None:
                sent.append(await fake.blast(events, repeat=50))

            task_group.start_soon(blast)
            received_all = [await everything.next_event() for _ in range(len(events) * 50)]
            received_answers = [await answers.next_event() for _ in range(len(wanted) * 50)]
        assert sent == [(len(events) + len(wanted)) * 50]
        assert [event.name for event in received_all[: len(events)]] == [e.name for e in events]
        assert all(event.name == "CHANNEL_ANSWER" for event in received_answers)
        assert received_answers[0]["Unique-ID"] == wanted[0]["Unique-ID"]


async def test_emitted_events_carry_the_switch_identity(fake: FakeFreeSWITCH) -> None:
    first = fake.build_event("HEARTBEAT", [("Up-Time", "1")])
    second = fake.build_event("HEARTBEAT")
    assert isinstance(first, Event)
    assert first["Core-UUID"] == fake.identity.core_uuid
    assert first["FreeSWITCH-Hostname"] == "fake-freeswitch"
    assert second.sequence == (first.sequence or 0) + 1
    assert [name for name, _ in first.headers.multi_items()][-2:] == [
        "Event-Sequence",
        "Up-Time",
    ]


async def test_destination_validation() -> None:
    with pytest.raises(ValueError):
        Destination(answer_after=-1)
    with pytest.raises(ValueError):
        Destination(reject_cause="USER BUSY")


async def test_running_lets_an_exception_through_unwrapped() -> None:
    with pytest.raises(LookupError, match="from the block"):
        async with FakeFreeSWITCH().running():
            raise LookupError("from the block")
