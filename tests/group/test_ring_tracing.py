"""The ``ring_group.ring`` span: its attributes and the recorded result of each outcome."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from genesis_trio import ChannelHangup, ConnectionLost, Inbound
from genesis_trio.channel import Channel
from genesis_trio.group import InMemoryLoadBalancer, RingGroup, RingMode
from genesis_trio.testing import Destination, FakeFreeSWITCH

pytestmark = pytest.mark.trio


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def ring_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = [s for s in exporter.get_finished_spans() if s.name == "ring_group.ring"]
    assert len(spans) == 1
    return spans[0]


def recorded_as_cancelled(exporter: InMemorySpanExporter) -> Mapping[str, object]:
    """The ring span's attributes, once it is known to record a cancellation,
    not a failure of the ring group."""
    span = ring_span(exporter)
    attributes = dict(span.attributes or {})
    assert attributes["ring_group.result"] == "cancelled"
    assert "ring_group.error" not in attributes
    assert span.status.status_code is not StatusCode.ERROR
    return attributes


async def test_answered(
    fake: FakeFreeSWITCH,
    autojump_clock: trio.testing.MockClock,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    fake.add_destination("user/1", Destination(answer_after=2))
    fake.add_destination("user/2", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port, tracer_provider=provider) as client:
        answered = await RingGroup.ring(
            client, ["user/1", "user/2"], timeout=10, variables={"ringback": "tone"}
        )
        assert answered is not None
    span = ring_span(exporter)
    assert dict(span.attributes or {}) == {
        "ring_group.mode": "parallel",
        "ring_group.size": 2,
        "ring_group.timeout": 10.0,
        "ring_group.has_balancer": False,
        "ring_group.has_variables": True,
        "ring_group.balanced": False,
        "ring_group.result": "answered",
        "ring_group.duration": pytest.approx(2.0),
        "ring_group.answered_uuid": answered.uuid,
        "ring_group.answered_dial_path": "user/1",
    }
    assert span.status.status_code is not StatusCode.ERROR
    # Each leg's originate is a child of the ring.
    creates = [s for s in exporter.get_finished_spans() if s.name == "channel.create"]
    assert len(creates) == 2
    assert span.context is not None
    assert all(s.parent is not None and s.parent.span_id == span.context.span_id for s in creates)


async def test_no_answer(
    fake: FakeFreeSWITCH,
    autojump_clock: trio.testing.MockClock,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    fake.add_destination("user/*", Destination(answer_after=None))
    async with Inbound(fake.host, fake.port, tracer_provider=provider) as client:
        assert await RingGroup.ring(client, ["user/1"], RingMode.SEQUENTIAL, timeout=5) is None
    attributes = dict(ring_span(exporter).attributes or {})
    assert attributes["ring_group.result"] == "no_answer"
    assert attributes["ring_group.mode"] == "sequential"
    assert attributes["ring_group.has_variables"] is False
    assert attributes["ring_group.duration"] == pytest.approx(5.0)
    assert "ring_group.answered_uuid" not in attributes
    assert "ring_group.error" not in attributes


async def test_balancing_attributes(
    fake: FakeFreeSWITCH,
    autojump_clock: trio.testing.MockClock,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    fake.add_destination("user/*", Destination(answer_after=1))
    async with Inbound(fake.host, fake.port, tracer_provider=provider) as client:
        answered = await RingGroup.ring(
            client, ["user/1", "user/2"], "balancing", balancer=InMemoryLoadBalancer()
        )
        assert answered is not None
    attributes = dict(ring_span(exporter).attributes or {})
    assert attributes["ring_group.mode"] == "balancing"
    assert attributes["ring_group.has_balancer"] is True
    assert attributes["ring_group.balanced"] is True
    assert attributes["ring_group.timeout"] == 30.0
    assert attributes["ring_group.result"] == "answered"


async def test_cancelled(
    fake: FakeFreeSWITCH,
    autojump_clock: trio.testing.MockClock,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    fake.add_destination("user/*", Destination(answer_after=20))
    async with Inbound(fake.host, fake.port, tracer_provider=provider) as client:
        with trio.move_on_after(3):
            await RingGroup.ring(client, ["user/1", "user/2"])
    attributes = recorded_as_cancelled(exporter)
    assert attributes["ring_group.duration"] == pytest.approx(3.0)


async def test_caller_hangup_is_recorded_as_cancelled(
    fake: FakeFreeSWITCH,
    autojump_clock: trio.testing.MockClock,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    fake.add_destination("user/caller", Destination(answer_after=0, hangup_after=2))
    fake.add_destination("user/*", Destination(answer_after=20))
    async with Inbound(fake.host, fake.port, tracer_provider=provider) as client:
        caller = await Channel.create(client, "user/caller")
        with pytest.raises(ChannelHangup):
            await RingGroup.ring(client, ["user/1"], caller=caller)
    # A caller who gives up is not a failure of the ring group.
    recorded_as_cancelled(exporter)


async def test_error(
    fake: FakeFreeSWITCH,
    autojump_clock: trio.testing.MockClock,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    fake.add_destination("user/*", Destination(answer_after=20))

    async def drop_after(seconds: float) -> None:
        await trio.sleep(seconds)  # a point in the scripted (virtual) timeline
        await fake.drop_connections()

    async with (
        Inbound(fake.host, fake.port, tracer_provider=provider) as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(drop_after, 1)
        with pytest.raises(ConnectionLost):
            await RingGroup.ring(client, ["user/1", "user/2"])
    span = ring_span(exporter)
    attributes = dict(span.attributes or {})
    assert attributes["ring_group.result"] == "error"
    assert "ConnectionLost" in str(attributes["ring_group.error"])
    assert span.status.status_code is StatusCode.ERROR
