"""A fake FreeSWITCH for tests, examples, demos and benchmarks.

:class:`FakeFreeSWITCH` speaks the inbound Event Socket protocol on a local
TCP port exactly as FreeSWITCH 1.11 does (the replies, header order and
framing of recorded sessions) and simulates calls: ``originate`` creates a
channel whose far end follows a scripted :class:`Destination`, firing the
lifecycle events a real switch fires. ``call_socket`` sends an incoming call
to an outbound socket server (yours), speaking outbound ESL as recorded.
Channels run what ``sendmsg`` queues (media applications take the time
``set_media_duration`` gives them and stop on ``uuid_break``), collect the
digits ``send_dtmf`` injects, and bridge (``uuid_bridge``). It runs on AnyIO
(trio or asyncio) and on AnyIO's clock, so trio's ``MockClock`` can skip the
waiting.
"""

import inspect as _inspect

from ._captured import captured_events
from ._channels import ApplicationRun, FakeChannel
from ._destinations import Destination
from ._server import FakeFreeSWITCH
from ._switch import ApiHandler

__all__ = [
    "ApiHandler",
    "ApplicationRun",
    "Destination",
    "FakeChannel",
    "FakeFreeSWITCH",
    "captured_events",
]

# Tracebacks and docs name them genesis_trio.testing.X, not the private module they live in.
for _value in (globals()[_name] for _name in __all__):
    if isinstance(_value, type) or _inspect.isfunction(_value):
        _value.__module__ = __name__
