"""OutcomeScope with no timeout opens no cancel scope: it must end every body as one does."""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st

from genesis_trio import ChannelHangup, ConnectionLost, Outcome
from genesis_trio._outcome import OutcomeScope

_BODY_ENDINGS = [
    "finish",
    "cancelled from outside",
    ChannelHangup("abc", "NORMAL_CLEARING"),
    ConnectionLost("gone"),
    TimeoutError("a timeout of the body's own"),
    ValueError("boom"),
    ExceptionGroup("several", [ChannelHangup("abc", None), ValueError("x")]),
]


def _ending_of(timeout: float | None, ending: object, backend: str) -> tuple[object, ...]:
    """How an OutcomeScope with ``timeout`` ends around a body that ends with ``ending``."""
    seen: list[Outcome] = []
    crossed: list[BaseException] = []

    async def body(outer: anyio.CancelScope) -> None:
        if ending == "cancelled from outside":
            # The caller's scope cancels, not a clock: a real-time deadline could also
            # fire during another body's checkpoint on a loaded machine.
            outer.cancel()
            await anyio.sleep_forever()
        elif isinstance(ending, BaseException):
            await anyio.lowlevel.checkpoint()
            raise ending
        else:
            await anyio.lowlevel.checkpoint()

    async def run() -> bool:
        with anyio.CancelScope() as outer:
            try:
                with OutcomeScope("op", timeout=timeout, on_outcome=seen.append) as scope:
                    await body(outer)
            except BaseException as exc:
                crossed.append(exc)
                if isinstance(exc, anyio.get_cancelled_exc_class()):
                    raise
            assert scope.outcome is (seen[0] if seen else None)
        return outer.cancelled_caught

    cancelled = anyio.run(run, backend=backend)
    return (
        tuple(seen),
        [type(exc) for exc in crossed],
        crossed[0] is ending if crossed else None,
        cancelled,
    )


@settings(deadline=None, max_examples=40)
@given(
    ending=st.sampled_from(_BODY_ENDINGS),
    backend=st.sampled_from(["trio", "asyncio"]),
)
def test_no_timeout_ends_as_an_endless_deadline_does(ending: object, backend: str) -> None:
    # timeout=None opens no cancel scope; a scope whose deadline never comes must end
    # every body exactly the same way (outcome, what crosses, the caller's own scope).
    assert _ending_of(None, ending, backend) == _ending_of(math.inf, ending, backend)
