from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from genesis_trio.testing import FakeFreeSWITCH


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeSWITCH]:
    async with FakeFreeSWITCH().running() as server:
        yield server
