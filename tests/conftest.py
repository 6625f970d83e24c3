"""Shared fixtures: the fake switch runs over real loopback sockets in every test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from genesis_trio.testing import FakeFreeSWITCH


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeSWITCH]:
    async with FakeFreeSWITCH().running() as switch:
        yield switch
