"""The fake runs on both AnyIO backends (asyncio as well as trio)."""

from __future__ import annotations

import pytest

from genesis_trio.testing import Destination, FakeFreeSWITCH

from ._raw_client import connect


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_runs_on_both_backends(anyio_backend: str) -> None:
    async with FakeFreeSWITCH().running() as fake:
        fake.add_destination("user/1000", Destination(answer_after=0.01))
        async with connect(fake) as client:
            await client.command("event json CHANNEL_ANSWER")
            body = await client.api("originate user/1000 &park")
            assert body.startswith("+OK ")
            answer = await client.next_event()
            assert answer.unique_id == body[4:].strip()
            assert await client.api(f"uuid_kill {answer.unique_id}") == "+OK\n"
