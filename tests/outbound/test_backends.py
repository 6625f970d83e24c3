"""The outbound path on both AnyIO backends (trio is the reference; asyncio must work too)."""

from __future__ import annotations

import anyio
import pytest

from genesis_trio import ChannelHangup, Outbound, Session
from genesis_trio.testing import FakeFreeSWITCH


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_a_call_on_each_backend(anyio_backend: str) -> None:
    outcome: list[object] = []
    collected = anyio.Event()
    done = anyio.Event()

    async def handler(session: Session) -> None:
        channel = session.channel
        try:
            # No wait for CHANNEL_PARK (a session sees it only if its myevents beat the
            # park): what the handler sends before the park runs once the channel parks.
            await channel.answer(timeout=5)
            await channel.playback("short.wav", timeout=5)
            with anyio.move_on_after(0.05):
                await channel.playback("long.wav")
            outcome.append(await channel.play_and_get_digits("menu.wav", timeout=5))
            collected.set()
            await channel.wait("DTMF", timeout=5)
        except ChannelHangup as gone:
            outcome.append(gone.cause)
        finally:
            done.set()

    async with FakeFreeSWITCH().running() as fake, anyio.create_task_group() as tasks:
        fake.set_media_duration("short.wav", 0.01)
        fake.set_media_duration("long.wav", 30)
        fake.set_media_duration("menu.wav", 30)
        address = await tasks.start(Outbound(handler, port=0).serve)
        call = await fake.call_socket(address)
        await call.wait_for_application("play_and_get_digits")
        fake.send_dtmf(call.uuid, "7")
        with anyio.fail_after(5):
            await collected.wait()
        call.request_hangup("NORMAL_CLEARING")
        await done.wait()
        await call.wait_ended()
        tasks.cancel_scope.cancel()
    assert outcome == ["7", "NORMAL_CLEARING"]
    long_run = [run for run in call.applications if run.data == "long.wav"]
    assert long_run[0].interrupted
    assert call.breaks == [False]
