"""The tutorial's steps (examples/tutorial/) against the real switch, unchanged."""

from __future__ import annotations

import pytest
import trio

from real_switch import RealSwitch
from tutorial_runs import CLIENT_STEPS, OUTBOUND_STEPS, run_client_step, run_outbound_step

DEADLINE = 60


@pytest.mark.parametrize("step", CLIENT_STEPS)
def test_client_step(step: str, freeswitch: RealSwitch) -> None:
    out = run_client_step(step, freeswitch.host, freeswitch.port, freeswitch.password)
    assert out.strip()
    if step == "step2_originate":
        assert "hung up: NORMAL_CLEARING" in out
        assert "9005 did not answer: USER_BUSY" in out


async def call_through_9000(switch: RealSwitch, port: int, digits: str) -> None:
    """Extension 9000 connects the call's B leg to the app; the A leg presses ``digits``
    once the B leg collects them."""
    async with switch.inbound() as client, client.subscribe("CHANNEL_EXECUTE") as events:
        with trio.fail_after(DEADLINE):
            reply = await client.bgapi(
                f"originate {{outbound_port={port}}}loopback/9000/default &park"
            )
            a_leg = reply.split()[1]
            if digits:
                async for event in events:
                    if event.application == "play_and_get_digits":
                        await client.api(f"uuid_send_dtmf {a_leg} {digits}")
                        break


@pytest.mark.parametrize("step", sorted(OUTBOUND_STEPS))
def test_outbound_step(step: str, freeswitch: RealSwitch) -> None:
    def place_call(port: int, digits: str) -> None:
        trio.run(call_through_9000, freeswitch, port, digits)

    run_outbound_step(step, place_call)
