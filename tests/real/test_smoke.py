"""The real switch answers: auth, api, and a loopback call seen through its events."""

from __future__ import annotations

import pytest
import trio

from genesis_trio import AuthenticationError, Channel, Inbound
from real_switch import RealSwitch, channel_exists, live_channel_uuids, wait_until


@pytest.mark.trio
async def test_api_status_on_the_real_switch(freeswitch: RealSwitch) -> None:
    async with freeswitch.inbound() as client:
        status = await client.api("status")
    assert "UP" in status


@pytest.mark.trio
async def test_wrong_password_is_refused(freeswitch: RealSwitch) -> None:
    with pytest.raises(AuthenticationError):
        async with Inbound(freeswitch.host, freeswitch.port, "not-the-password"):
            pass


@pytest.mark.trio
async def test_a_loopback_call_is_created_and_hung_up(freeswitch: RealSwitch) -> None:
    async with freeswitch.inbound() as client:
        with trio.fail_after(15):
            channel = await Channel.create(client, "loopback/9002/default")
            assert await channel_exists(client, channel.uuid)
            await channel.hangup()

            assert not await channel_exists(client, channel.uuid)

            async def nothing_left() -> bool:
                return not await live_channel_uuids(client)

            await wait_until(nothing_left)
