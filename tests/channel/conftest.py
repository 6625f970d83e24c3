from __future__ import annotations

import pytest


@pytest.fixture(params=["outbound", "inbound"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which connection controls the channel: an outbound Session or an Inbound client."""
    return str(request.param)
