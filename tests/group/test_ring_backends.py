"""The ring group on both AnyIO backends: it is written against AnyIO, not trio.

Real time here (no MockClock on asyncio), so the scripted delays are short.
"""

from __future__ import annotations

import anyio
import pytest

from genesis_trio import Inbound
from genesis_trio.group import InMemoryLoadBalancer, RingGroup, RingMode
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_answer_cancel_and_deadline() -> None:
    balancer = InMemoryLoadBalancer()
    async with FakeFreeSWITCH().running() as fake:
        fake.add_destination("user/1", Destination(answer_after=0.05))
        fake.add_destination("user/2", Destination(answer_after=None))
        fake.add_destination("user/3", Destination(reject_cause="USER_BUSY"))
        async with Inbound(fake.host, fake.port) as client:
            answered = await RingGroup.ring(
                client, ["user/1", "user/2", "user/3"], timeout=10, balancer=balancer
            )
            assert answered is not None
            assert answered.dial_path == "user/1"
            assert set(fake.channels) == {answered.uuid}
            assert {leg.dial_path: leg.hangup_cause for leg in fake.channel_history} == {
                "user/1": None,
                "user/2": "LOSE_RACE",
                "user/3": "USER_BUSY",
            }
            assert await balancer.count("user/1") == 1
            await answered.hangup()
            await anyio.wait_all_tasks_blocked()
            assert await balancer.count("user/1") == 0

            with anyio.move_on_after(0.05) as scope:
                await RingGroup.ring(client, ["user/2"], balancer=balancer)
            assert scope.cancelled_caught
            assert fake.channel_history[-1].hangup_cause == "ORIGINATOR_CANCEL"
            assert await balancer.count("user/2") == 0

            # Real time (this test also runs on asyncio, with no mock clock): each leg gets
            # 1 s, long enough that even a loaded machine has set the leg up before its
            # share runs out, so the deadline (NO_ANSWER) and not the set-up is what ends it.
            nobody = await RingGroup.ring(
                client, ["user/2", "user/2"], RingMode.SEQUENTIAL, timeout=2.0
            )
            assert nobody is None
            assert [leg.hangup_cause for leg in fake.channel_history[-2:]] == [
                "NO_ANSWER",
                "NO_ANSWER",
            ]
