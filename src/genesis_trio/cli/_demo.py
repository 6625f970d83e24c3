"""``genesis-trio demo``: a short call flow against the built-in fake switch."""

from __future__ import annotations

from typing import Any

import trio

from .. import Inbound
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
        _say(f"fake FreeSWITCH listening on {fake.host}:{fake.port}")
        with tracer.start_as_current_span("demo.call_flow"):
            async with Inbound(fake.host, fake.port, "ClueCon") as client:
                _say("connected and authenticated")
                status = await client.api("status")
                _say(f"api status -> {status.splitlines()[0]}")
                version = await client.bgapi("version")
                _say(f"bgapi version -> {version.strip()}")
                await client.events(
                    "CHANNEL_CREATE",
                    "CHANNEL_ANSWER",
                    "CHANNEL_HANGUP",
                    "CHANNEL_HANGUP_COMPLETE",
                    event_format=event_format,
                )
                async with client.subscribe(request=False) as events:
                    reply = await client.bgapi(
                        "originate {origination_caller_id_number=1000}user/1001 &park"
                    )
                    uuid = reply.removeprefix("+OK").strip()
                    _say(f"originate user/1001 -> answered, uuid {uuid}")
                    await client.api(f"uuid_kill {uuid} NORMAL_CLEARING")
                    _say("uuid_kill sent")
                    async for event in events:
                        cause = f" ({event.hangup_cause})" if event.hangup_cause else ""
                        _say(f"  event {event.name}{cause}")
                        if event.name == "CHANNEL_HANGUP_COMPLETE":
                            break
            _say("disconnected")


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
