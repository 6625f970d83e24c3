"""Ring legs carry the ring's deadline to the switch: a client killed mid-ring leaves no leg.

A ring group ends its legs itself at the deadline, over its connection. When the
process dies, nobody can: so every leg's originate carries ``originate_timeout``
(the ring's remaining time), and FreeSWITCH's originate job, which outlives the
connection, ends the ringing by itself.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap

import pytest
import trio
import trio.lowlevel

from real_switch import RealSwitch, watch_calls

pytestmark = pytest.mark.trio

RING_SECONDS = 4
LEGS = 3

_CLIENT = textwrap.dedent(
    """
    import sys

    import trio

    from genesis_trio import Inbound
    from genesis_trio.group import RingGroup

    host, port, password, tag_name, tag = sys.argv[1:6]


    async def main() -> None:
        async with Inbound(host, int(port), password) as client:
            await RingGroup.ring(
                client,
                ["loopback/9004/default"] * 3,
                timeout=float(sys.argv[6]),
                variables={tag_name: tag},
            )


    trio.run(main)
    """
)


async def test_legs_end_on_the_switch_when_the_ringing_client_is_killed(
    freeswitch: RealSwitch,
) -> None:
    async with watch_calls(freeswitch) as watch:
        [(tag_name, tag)] = watch.variables.items()
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-c",
                _CLIENT,
                freeswitch.host,
                str(freeswitch.port),
                freeswitch.password,
                tag_name,
                tag,
                str(RING_SECONDS),
            ]
        )
        try:
            # Three legs ringing: each is a loopback pair (9004-a we dial, 9004-b rings).
            await watch.wait_for(
                lambda event: (
                    event.name == "CHANNEL_CREATE"
                    and str(event.get("Channel-Name", "")).endswith("-a")
                ),
                count=LEGS,
                within=30,
            )
            os.kill(process.pid, signal.SIGKILL)
            with trio.fail_after(10):
                await process.wait()
            # Nobody can hang them up now but the switch. They are all still there:
            # the client really died before its deadline.
            assert len(watch.alive()) >= LEGS
            # Gone once the deadline has passed (its whole-second rounding, the
            # switch's one-second timer check and the loopback pair's teardown).
            await watch.assert_all_gone(2 * LEGS, within=RING_SECONDS + 15)
            causes = {
                event.get("Hangup-Cause")
                for event in watch.find(lambda event: event.name == "CHANNEL_HANGUP")
                if str(event.get("Channel-Name", "")).endswith("-a")
            }
            assert causes == {"NO_ANSWER"}, causes
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    os.kill(process.pid, signal.SIGKILL)
                await process.wait()
