"""Scripted DTMF: a destination's (or a caller's) far end presses digits after the answer."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from genesis_trio import Channel, Inbound, Outbound, Session
from genesis_trio.testing import Destination, FakeFreeSWITCH
from outbound_serving import serving


@pytest.mark.trio
async def test_a_destination_presses_its_digits_after_the_answer(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(answer_after=2, dtmf="42", dtmf_after=3))
    fake.set_media_duration("menu.wav", 60)
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "user/1000")
        answered_at = trio.current_time()
        digits = await channel.play_and_get_digits("menu.wav", max_digits=2, input_timeout=5)
        assert digits == "42"
        # The digits cut the 60 s prompt short, dtmf_after seconds after the answer.
        assert trio.current_time() - answered_at == pytest.approx(3)


@pytest.mark.trio
async def test_digits_pressed_before_the_menu_wait_for_it(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    fake.add_destination("user/1000", Destination(dtmf="7", dtmf_after=0))
    async with Inbound(fake.host, fake.port) as client:
        channel = await Channel.create(client, "user/1000")
        await channel.playback("welcome.wav")
        assert await channel.play_and_get_digits("menu.wav", max_digits=1) == "7"


@pytest.mark.trio
async def test_a_caller_into_an_outbound_app_presses_its_digits(
    fake: FakeFreeSWITCH, autojump_clock: trio.testing.MockClock
) -> None:
    got: list[str] = []

    async def handler(session: Session) -> None:
        await session.channel.answer()
        got.append(await session.channel.play_and_get_digits("menu.wav", max_digits=1))
        await session.channel.hangup()

    async with serving(Outbound(handler, port=0)) as address:
        call = await fake.call_socket(address, dtmf="3", dtmf_after=0.5)
        await call.wait_ended()
    assert got == ["3"]
    assert call.hangup_cause == "NORMAL_CLEARING"


def test_destination_refuses_what_is_not_dtmf() -> None:
    with pytest.raises(ValueError, match="DTMF"):
        Destination(dtmf="1x")
    with pytest.raises(ValueError, match="dtmf_after"):
        Destination(dtmf="1", dtmf_after=-1)
