"""``genesis-trio demo``: a short call flow against the built-in fake switch."""

from __future__ import annotations

from typing import Any

import trio

from .. import Channel, Event, Inbound
from ..protocol import EventFormat
from ..testing import Destination, FakeFreeSWITCH


def _say(text: str) -> None:
    print(text, flush=True)


def _install_sdk() -> Any | None:
    """An in-memory span exporter on an SDK provider, if the SDK is installed."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        return None
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


async def _call_flow(event_format: EventFormat) -> None:
    from opentelemetry import trace

    tracer = trace.get_tracer("genesis_trio.demo")
    async with FakeFreeSWITCH().running() as fake:
        fake.add_destination("user/1001", Destination(answer_after=0.5))
        fake.set_media_duration("ivr/*", 0.4)
        _say(f"fake FreeSWITCH listening on {fake.host}:{fake.port}")
        with tracer.start_as_current_span("demo.call_flow"):
            async with Inbound(fake.host, fake.port, "ClueCon") as client:
                _say("connected and authenticated")
                status = await client.api("status")
                _say(f"api status -> {status.splitlines()[0]}")
                version = await client.bgapi("version")
                _say(f"bgapi version -> {version.strip()}")
                await client.events(*_SHOWN_EVENTS, event_format=event_format)
                for name in _SHOWN_EVENTS:
                    client.on(name, _print_event)
                channel = await Channel.create(
                    client, "user/1001", variables={"origination_caller_id_number": "1000"}
                )
                _say(f"originate user/1001 -> answered, uuid {channel.uuid}")
                await channel.playback("ivr/welcome.wav")
                _say("playback ivr/welcome.wav -> done")
                hangup = await channel.hangup("NORMAL_CLEARING")
                cause = hangup.hangup_cause if hangup is not None else channel.hangup_cause
                _say(f"hangup -> {cause}")
                await channel.wait("CHANNEL_HANGUP_COMPLETE", timeout=5)
            _say("disconnected")


_SHOWN_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
)


def _print_event(event: Event) -> None:
    detail = event.application or event.hangup_cause
    _say(f"  event {event.name}{f' ({detail})' if detail else ''}")


def run_demo(*, event_format: EventFormat = "plain", show_trace: bool = True) -> int:
    exporter = _install_sdk() if show_trace else None
    trio.run(_call_flow, event_format)
    if exporter is not None:
        from ..tracing import format_span_tree

        _say("\ntrace:")
        _say(format_span_tree(exporter.get_finished_spans()))
    elif show_trace:
        _say("\n(install opentelemetry-sdk to see the trace)")
    return 0
