"""A channel operation's span and OutcomeScope (a class) end as ``with span, scope:`` does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import anyio
import anyio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from genesis_trio import ChannelHangup, ConnectionLost, Outcome, OutcomeScope, tracing
from genesis_trio.channel._core import _TracedOperation

from .conftest import Recorded

UUID = "0b0c7a52-4c7e-4c4e-9a3c-6f0e2b1d5e77"

_BODY_ENDINGS = [
    "finish",
    "own timeout",
    "cancelled from outside",
    ChannelHangup(UUID, "NORMAL_CLEARING"),
    ConnectionLost("gone"),
    ValueError("boom"),
    ExceptionGroup("several", [ChannelHangup(UUID, None), ValueError("x")]),
]


def _span(kind: str, provider: TracerProvider) -> tracing.OperationSpan:
    if kind == "wait":
        return tracing.channel_wait(
            UUID, target="CHANNEL_ANSWER", timeout=5, wait_type="event", tracer_provider=provider
        )
    return tracing.channel_answer(UUID, tracer_provider=provider)


@contextmanager
def _plain(span: tracing.OperationSpan, name: str, timeout: float | None) -> Iterator[OutcomeScope]:
    """What _TracedOperation replaces: the generator the channel operations used."""

    def record(outcome: Outcome) -> None:
        span.set(tracing.names.WAIT_RESULT, outcome.value)
        if isinstance(span, tracing.WaitSpan):
            span.set_result(tracing.WaitResult(outcome.value))

    with span, OutcomeScope(name, timeout=timeout, on_outcome=record) as scope:
        yield scope


Make = Callable[[tracing.OperationSpan, str, float | None], AbstractContextManager[OutcomeScope]]


def _ending_of(make: Make, kind: str, ending: object, backend: str) -> tuple[object, ...]:
    recorded = Recorded.in_memory()
    crossed: list[BaseException] = []
    outcomes: list[Outcome | None] = []

    async def body() -> None:
        if ending in ("own timeout", "cancelled from outside"):
            await anyio.sleep_forever()
        await anyio.lowlevel.checkpoint()
        if isinstance(ending, BaseException):
            raise ending

    async def run() -> bool:
        timeout = 0.001 if ending == "own timeout" else 30.0
        with anyio.move_on_after(0.01 if ending == "cancelled from outside" else 30) as outer:
            try:
                with make(_span(kind, recorded.provider), "answer", timeout) as scope:
                    await body()
            except BaseException as exc:
                crossed.append(exc)
                if isinstance(exc, anyio.get_cancelled_exc_class()):
                    raise
            finally:
                outcomes.append(scope.outcome)
        return outer.cancelled_caught

    cancelled = anyio.run(run, backend=backend)
    (span,) = recorded.spans()
    attributes = {k: v for k, v in (span.attributes or {}).items() if not k.endswith("duration")}
    return (
        span.name,
        attributes,
        span.status.status_code,
        [event.name for event in span.events],
        outcomes,
        [type(exc) for exc in crossed],
        cancelled,
    )


@settings(deadline=None, max_examples=50)
@given(
    kind=st.sampled_from(["success", "wait"]),
    ending=st.sampled_from(_BODY_ENDINGS),
    backend=st.sampled_from(["trio", "asyncio"]),
)
def test_the_traced_operation_ends_as_span_and_scope_nested_do(
    kind: str, ending: object, backend: str
) -> None:
    assert _ending_of(_TracedOperation, kind, ending, backend) == _ending_of(
        _plain, kind, ending, backend
    )
