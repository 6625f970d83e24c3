"""Tutorial step 6: test the IVR of step 4 with the fake switch, in milliseconds.

The fake calls the IVR (`call_socket`), the caller presses scripted digits, and the test
reads what the channel ran. trio's MockClock (`autojump_clock`) skips every wait:

    uv run pytest examples/tutorial/test_step6_ivr.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from genesis_trio import Outbound
from genesis_trio.testing import FakeChannel, FakeFreeSWITCH

sys.path.insert(0, str(Path(__file__).parent))
from step4_digits import CHOICES, GOODBYE, MENU, handler


async def call_ivr(**call: object) -> FakeChannel:
    """One call into the IVR; returns the fake's channel once the call ended."""
    async with FakeFreeSWITCH().running() as fake, trio.open_nursery() as nursery:
        fake.set_media_duration(MENU, 2)
        address = await nursery.start(Outbound(handler, port=0).serve)
        channel = await fake.call_socket(address, **call)  # type: ignore[arg-type]
        await channel.wait_ended()
        nursery.cancel_scope.cancel()
    return channel


@pytest.mark.trio
@pytest.mark.parametrize("digit", ["1", "2"])
async def test_a_choice_plays_its_file(digit: str, autojump_clock: trio.testing.MockClock) -> None:
    channel = await call_ivr(dtmf=digit, dtmf_after=1)
    names = [run.name for run in channel.applications]
    assert names == ["socket", "answer", "play_and_get_digits", "playback"]
    assert channel.applications[-1].data == CHOICES[digit]
    assert channel.hangup_cause == "NORMAL_CLEARING"


@pytest.mark.trio
async def test_a_wrong_digit_then_silence_says_goodbye(
    autojump_clock: trio.testing.MockClock,
) -> None:
    channel = await call_ivr(dtmf="9")
    assert channel.applications[-1].data == GOODBYE
    assert channel.variables["read_result"] == "failure"


@pytest.mark.trio
async def test_the_caller_hanging_up_in_the_menu_ends_the_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    channel = await call_ivr(hangup_after=1)
    assert channel.applications[-1].name == "play_and_get_digits"
    assert channel.applications[-1].interrupted
