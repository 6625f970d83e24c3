"""A fake FreeSWITCH for tests, examples, demos and benchmarks.

:class:`FakeFreeSWITCH` speaks the inbound Event Socket protocol on a local
TCP port exactly as FreeSWITCH 1.11 does (the replies, header order and
framing of recorded sessions) and simulates calls: ``originate`` creates a
channel whose far end follows a scripted :class:`Destination`, firing the
lifecycle events a real switch fires. It runs on AnyIO (trio or asyncio)
and on AnyIO's clock, so trio's ``MockClock`` can skip the waiting.
"""

from ._captured import captured_events
from ._channels import FakeChannel
from ._destinations import Destination
from ._server import ApiHandler, FakeFreeSWITCH

__all__ = [
    "ApiHandler",
    "Destination",
    "FakeChannel",
    "FakeFreeSWITCH",
    "captured_events",
]
