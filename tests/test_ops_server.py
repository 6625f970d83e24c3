"""``OpsServer`` used from code, in the app's own task group."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from cli_process import free_port
from genesis_trio import Consumer, Event, Inbound, OpsServer, filtrate
from genesis_trio.testing import FakeFreeSWITCH

pytestmark = pytest.mark.trio


async def test_an_inbound_client_reports_its_connection_state() -> None:
    async with FakeFreeSWITCH().running() as fake, trio.open_nursery() as nursery:
        client = Inbound(fake.host, fake.port, "ClueCon")
        ops = OpsServer(client, port=free_port())
        host, port = await nursery.start(ops.serve)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            assert (await http.get("/ready")).status_code == 503
            async with client:
                ready = await http.get("/ready")
                assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
            assert (await http.get("/ready")).status_code == 503
            assert (await http.get("/health")).json() == {"status": "healthy"}
            assert (await http.get("/nothing")).status_code == 404
            assert (await http.post("/ready")).status_code == 405
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain")
        nursery.cancel_scope.cancel()


async def test_a_callable_decides_readiness() -> None:
    state = {"ready": False}
    ops = OpsServer(lambda: state["ready"], port=free_port())
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(ops.serve)
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            assert (await http.get("/ready")).status_code == 503
            state["ready"] = True
            assert (await http.get("/ready")).status_code == 200
        nursery.cancel_scope.cancel()


async def test_readiness_keeps_a_consumers_switch_side_filters() -> None:
    async with FakeFreeSWITCH().running() as fake, trio.open_nursery() as nursery:
        app = Consumer(fake.host, fake.port, "ClueCon")

        @app.handle("CHANNEL_ANSWER")
        @filtrate("Caller-Destination-Number", "1000")
        async def answered(event: Event) -> None:
            pass

        ops = OpsServer(app, port=free_port())
        await nursery.start(ops.serve)
        await nursery.start(app.serve)
        (filters,) = fake.connection_filters
        assert ("Caller-Destination-Number", "1000") in filters
        assert ("Event-Name", "HEARTBEAT") in filters
        assert not ops.ready  # subscribed, but no event yet
        fake.fire(fake.build_event("HEARTBEAT"))
        # The HEARTBEAT's handler runs in the consumer's tasks: done once they are all idle.
        with trio.fail_after(60):
            while not ops.ready:
                await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
