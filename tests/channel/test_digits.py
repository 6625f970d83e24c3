"""DTMF: play_and_get_digits, on_dtmf handlers and send_dtmf, over both connections.

The sleeps here are points in a scripted timeline on trio's MockClock (``autojump_clock``):
virtual seconds, skipped as soon as every task waits; nothing waits for real time to pass.
"""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from genesis_trio import ChannelHangup
from genesis_trio.testing import FakeFreeSWITCH

from ._calls import call_over

pytestmark = pytest.mark.trio


async def test_play_and_get_digits_returns_the_digits(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("menu.wav", 10)
    async with call_over(kind, fake) as call, trio.open_nursery() as nursery:

        async def caller() -> None:
            await call.far.wait_for_application("play_and_get_digits")
            await trio.sleep(2)
            fake.send_dtmf(call.far.uuid, "12#")

        nursery.start_soon(caller)
        started = trio.current_time()
        digits = await call.channel.play_and_get_digits(
            "menu.wav", max_digits=4, input_timeout=5, variable="choice"
        )
        assert digits == "12"
        # The first digit cut the 10 s prompt short; the terminator ended the input.
        assert trio.current_time() - started == pytest.approx(2)
        assert call.far.variables["choice"] == "12"
        arguments = call.far.applications[-1].data.split()
        assert arguments[:9] == [
            "1", "4", "3", "5000", "#", "menu.wav", "silence_stream://250", "choice", r"\d+"
        ]  # fmt: skip


async def test_no_valid_input_gives_an_empty_string(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("menu.wav", 1)
    async with call_over(kind, fake) as call:
        started = trio.current_time()
        digits = await call.channel.play_and_get_digits(
            "menu.wav", tries=2, input_timeout=3, invalid_file="silence_stream://0"
        )
        assert digits == ""
        assert trio.current_time() - started == pytest.approx(2 * (1 + 3))


async def test_caller_hanging_up_during_play_and_get_digits_raises_at_once(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    fake.set_media_duration("menu.wav", 30)
    async with call_over(kind, fake) as call, trio.open_nursery() as nursery:

        async def caller() -> None:
            await call.far.wait_for_application("play_and_get_digits")
            await trio.sleep(1.5)
            call.far.request_hangup("ORIGINATOR_CANCEL")

        nursery.start_soon(caller)
        started = trio.current_time()
        with pytest.raises(ChannelHangup) as caught:
            await call.channel.play_and_get_digits("menu.wav", input_timeout=60)
        assert trio.current_time() - started == pytest.approx(1.5)
        assert caught.value.cause == "ORIGINATOR_CANCEL"
        assert call.channel.hung_up


async def test_dtmf_handlers_run_in_tasks_and_stop_after_hangup(
    fake: FakeFreeSWITCH,
    kind: str,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with call_over(kind, fake) as call:
        every: list[str] = []
        ones: list[str] = []
        both_started = trio.Event()

        @call.channel.on_dtmf()
        async def any_digit(digit: str) -> None:
            every.append(digit)
            if digit == "5":
                raise RuntimeError("handler bug")

        @call.channel.on_dtmf("1")
        async def one(digit: str) -> None:
            ones.append(digit)
            if len(ones) == 2:
                both_started.set()
            await trio.sleep(10)  # a slow handler holds up nothing else

        with caplog.at_level(logging.ERROR, logger="genesis_trio"):
            fake.send_dtmf(call.far.uuid, "151")
            await both_started.wait()
            await trio.testing.wait_all_tasks_blocked()
        assert sorted(every) == ["1", "1", "5"]
        assert ones == ["1", "1"]
        assert any("DTMF handler" in record.getMessage() for record in caplog.records)
        call.far.request_hangup("NORMAL_CLEARING")
        await call.channel.wait("CHANNEL_HANGUP", timeout=5)
        call.far.receive_dtmf("1")  # a late digit: no handler runs for it
        await trio.testing.wait_all_tasks_blocked()
        assert ones == ["1", "1"]
        assert sorted(every) == ["1", "1", "5"]
        with pytest.raises(KeyError):
            fake.send_dtmf("no-such-call", "1")


async def test_send_dtmf_and_wait_for_a_digit(
    fake: FakeFreeSWITCH, kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with call_over(kind, fake) as call, trio.open_nursery() as nursery:
        await call.channel.send_dtmf("12w3", duration_ms=100)
        assert call.far.dtmf_sent == ["12w3@100"]

        async def caller() -> None:
            await trio.sleep(1)
            fake.send_dtmf(call.far.uuid, "9")

        nursery.start_soon(caller)
        event = await call.channel.wait("DTMF", timeout=5)
        assert event is not None
        assert event["DTMF-Digit"] == "9"
        with pytest.raises(ValueError):
            await call.channel.send_dtmf("1\nsendmsg")
