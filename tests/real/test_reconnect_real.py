"""Reconnecting against a real FreeSWITCH: a peer that goes silent, a switch restarted.

A silent peer is a loopback TCP proxy that stops forwarding what the switch
sends (the socket stays open, as with a hung switch or a black-holed path);
the restart stops a private switch by its PID and starts it again on the same
ports, under a running ``genesis-trio consumer`` whose ``/ready`` is polled.
"""

from __future__ import annotations

import functools
import signal
from pathlib import Path

import httpx
import pytest
import trio

from cli_process import cli_process, free_port
from genesis_trio import Backoff, Event, Inbound
from ops_scrape import ready_with_heartbeats, wait_for_status
from real_switch import RealSwitch, start_freeswitch_again, stop_freeswitch

pytestmark = pytest.mark.trio


class SilencingProxy:
    """Forwards a loopback TCP port to the switch; ``silent`` swallows what the switch sends."""

    def __init__(self, switch: RealSwitch) -> None:
        self.switch = switch
        self.silent = False
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, self._relay, 0, host="127.0.0.1")
            )
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started()

    async def _relay(self, client: trio.SocketStream) -> None:
        up = await trio.open_tcp_stream(self.switch.host, self.switch.port)
        async with client, up, trio.open_nursery() as pipes:
            pipes.start_soon(self._pipe, client, up, False, pipes.cancel_scope)
            pipes.start_soon(self._pipe, up, client, True, pipes.cancel_scope)

    async def _pipe(
        self,
        source: trio.SocketStream,
        sink: trio.SocketStream,
        silenceable: bool,
        both: trio.CancelScope,
    ) -> None:
        try:
            async for chunk in source:
                if silenceable and self.silent:
                    continue  # the client hears nothing, the socket stays open
                await sink.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            both.cancel()  # one side ended: so does the relay


async def test_liveness_catches_a_silent_switch_and_reconnects(freeswitch: RealSwitch) -> None:
    proxy = SilencingProxy(freeswitch)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        client = Inbound(
            "127.0.0.1",
            proxy.port,
            freeswitch.password,
            timeout=5,
            liveness_timeout=25,  # FreeSWITCH's HEARTBEAT comes every 20 s
            reconnect=Backoff(initial=0.5, maximum=2),
        )
        async with client, client.gaps() as gaps:
            # Even behind a filter of ours, the switch's HEARTBEATs come through.
            await client.filter("Unique-ID", "no-such-channel")
            async with client.subscribe("HEARTBEAT", request=False) as heartbeats:
                with trio.fail_after(45):
                    beat = await heartbeats.receive()
            assert beat.name == "HEARTBEAT"
            first = client.connection

            proxy.silent = True
            with trio.fail_after(60):
                await first.closed.wait()
            assert "liveness_timeout" in str(first.lost_reason)
            with pytest.raises(Exception, match="liveness_timeout"):
                await client.api("status")

            proxy.silent = False
            with trio.fail_after(60):
                gap = await gaps.receive()
            assert "liveness_timeout" in gap.reason
            assert client.connection is not first
            assert "UP" in await client.api("status")
            assert client.filters == [("Unique-ID", "no-such-channel")]
        nursery.cancel_scope.cancel()


# No reconnect of its own: the CLI's --reconnect turns it on.
CONSUMER_APP = """\
from genesis_trio import Consumer, Event

app = Consumer()

@app.handle("genesis::restart")
async def restarted(event: Event) -> None:
    print("got", event["X-N"], flush=True)
"""


async def heartbeats_until_ready(http: httpx.AsyncClient, switch: RealSwitch) -> None:
    """Probe /ready, sending a HEARTBEAT before each look so it need not wait 20 s for one."""
    async with switch.inbound() as control:

        async def heartbeat() -> None:
            await control.sendevent("HEARTBEAT")

        await ready_with_heartbeats(http, heartbeat, within=90)


async def fire(switch: RealSwitch, n: str) -> None:
    async with switch.inbound() as control:
        await control.sendevent("CUSTOM", {"Event-Subclass": "genesis::restart", "X-N": n})


async def test_consumer_readiness_across_a_switch_restart(
    private_freeswitch: RealSwitch, tmp_path: Path
) -> None:
    switch = private_freeswitch
    (tmp_path / "app.py").write_text(CONSUMER_APP)
    ops_port = free_port()
    env = {
        "ESL_HOST": switch.host,
        "ESL_PORT": str(switch.port),
        "ESL_PASSWORD": switch.password,
        "ESL_OPS_PORT": str(ops_port),
    }
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops_port}") as http,
        cli_process(
            "--log-level",
            "info",
            "consumer",
            str(tmp_path / "app.py"),
            "--reconnect",
            "--liveness-timeout",
            "60",
            env=env,
        ) as cli,  # fmt: skip
    ):
        await cli.wait_for_line("ops endpoints on")
        await heartbeats_until_ready(http, switch)
        await fire(switch, "1")
        await cli.wait_for_line("got 1", stream="stdout")

        stop_freeswitch(switch)  # by its PID
        await wait_for_status(http, "/ready", 503, within=90)
        assert (await http.get("/health")).status_code == 200
        await cli.wait_for_line("lost the connection")

        switch = start_freeswitch_again(switch)  # same ports
        await heartbeats_until_ready(http, switch)
        await cli.wait_for_line("reconnected to")
        # Subscribed again: a handler gets the restarted switch's event.
        await fire(switch, "2")
        await cli.wait_for_line("got 2", stream="stdout")
        assert (await http.get("/health")).status_code == 200

        cli.signal(signal.SIGTERM)
        assert await cli.wait() == 0
    assert switch.password not in cli.output


async def test_a_plain_def_handler_runs_in_a_thread_on_the_real_switch(
    freeswitch: RealSwitch,
) -> None:
    import threading

    loop_thread = threading.get_ident()
    seen: list[bool] = []
    done = threading.Event()

    def handler(event: Event) -> None:
        seen.append(threading.get_ident() != loop_thread)
        done.set()

    async with freeswitch.inbound() as client:
        client.on("genesis::sync", handler)
        await client.events("CUSTOM", "genesis::sync")
        await client.sendevent("CUSTOM", {"Event-Subclass": "genesis::sync"})
        with trio.fail_after(20):
            await trio.to_thread.run_sync(done.wait, abandon_on_cancel=True)
    assert seen == [True]
