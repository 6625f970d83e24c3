"""Shared fixtures: the fake switch runs over real loopback sockets in every test;
the real switch (``real_switch.py``) is started once per session where tests ask for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from genesis_trio.testing import FakeFreeSWITCH
from real_switch import freeswitch, private_freeswitch, pytest_sessionfinish

__all__ = ["fake", "freeswitch", "private_freeswitch", "pytest_sessionfinish"]

_REAL_SWITCH_FIXTURES = {"freeswitch", "private_freeswitch"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeSWITCH]:
    async with FakeFreeSWITCH().running() as switch:
        yield switch


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses a real switch carries the ``freeswitch`` marker (``-m freeswitch``)."""
    for item in items:
        if _REAL_SWITCH_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.freeswitch)
