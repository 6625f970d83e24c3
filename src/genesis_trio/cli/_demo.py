"""``genesis-trio demo``: a short call flow against the built-in fake switch or a real one."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from .. import Channel, Event, Inbound
from ..protocol import EventFormat
from ..testing import Destination, FakeFreeSWITCH
from ._run import run_until_signal


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


@dataclass(frozen=True)
class DemoTarget:
    """Where the demo runs: the built-in fake (``host=None``) or a real FreeSWITCH."""

    host: str | None = None
    port: int = 8021
    password: str = field(default="ClueCon", repr=False)
    #: Who to call; None picks ``user/1001`` on the fake, ``loopback/9002/default`` on a
    #: real switch (the test bundle's extension that answers and parks).
    dial: str | None = None
    #: What to play; None picks ``ivr/welcome.wav`` on the fake and a tone on a real switch
    #: (it needs no sound files).
    playback: str | None = None


REAL_DIAL = "loopback/9002/default"
REAL_PLAYBACK = "tone_stream://%(300,100,440);loops=2"


async def _call_flow(event_format: EventFormat, target: DemoTarget) -> None:
    async with AsyncExitStack() as stack:
        if target.host is None:
            fake = await stack.enter_async_context(FakeFreeSWITCH(target.password).running())
            fake.add_destination("user/1001", Destination(answer_after=0.5))
            fake.set_media_duration("ivr/*", 0.4)
            _say(f"fake FreeSWITCH listening on {fake.host}:{fake.port}")
            host, port = fake.host, fake.port
            dial, media = target.dial or "user/1001", target.playback or "ivr/welcome.wav"
        else:
            _say(f"real FreeSWITCH at {target.host}:{target.port}")
            host, port = target.host, target.port
            dial, media = target.dial or REAL_DIAL, target.playback or REAL_PLAYBACK
        await _run(event_format, host, port, target.password, dial, media)


async def _run(
    event_format: EventFormat, host: str, port: int, password: str, dial: str, media: str
) -> None:
    from opentelemetry import trace

    tracer = trace.get_tracer("genesis_trio.demo")
    shown = _OwnEvents()
    with tracer.start_as_current_span("demo.call_flow"):
        async with Inbound(host, port, password) as client:
            _say("connected and authenticated")
            status = await client.api("status")
            _say(f"api status -> {status.splitlines()[0]}")
            version = await client.bgapi("version")
            _say(f"bgapi version -> {version.strip()}")
            await client.events(*_SHOWN_EVENTS, event_format=event_format)
            for name in _SHOWN_EVENTS:
                client.on(name, shown.see)
            channel = await Channel.create(
                client, dial, variables={"origination_caller_id_number": "1000"}
            )
            _say(f"originate {dial} -> answered, uuid {channel.uuid}")
            shown.follow(channel.uuid)
            await channel.playback(media)
            _say(f"playback {media} -> done")
            hangup = await channel.hangup("NORMAL_CLEARING")
            cause = hangup.hangup_cause if hangup is not None else channel.hangup_cause
            _say(f"hangup -> {cause}")
            await channel.wait("CHANNEL_HANGUP_COMPLETE", timeout=5)
        _say("disconnected")


class _OwnEvents:
    """Prints the demo call's own events only: a real switch sends every call's.

    Events seen before the call's uuid is known wait here, then those of the call are
    printed; the handler runs sequentially, so the order is the switch's.
    """

    def __init__(self) -> None:
        self._uuid: str | None = None
        self._early: list[Event] = []

    async def see(self, event: Event) -> None:
        # A coroutine, so it runs on the loop: it shares its lists with follow().
        if self._uuid is None:
            self._early.append(event)
        elif event.unique_id == self._uuid:
            _print_event(event)

    def follow(self, uuid: str) -> None:
        self._uuid = uuid
        early, self._early = self._early, []
        for event in early:
            if event.unique_id == uuid:
                _print_event(event)


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


def run_demo(
    *,
    event_format: EventFormat = "plain",
    show_trace: bool = True,
    target: DemoTarget | None = None,
) -> int:
    exporter = _install_sdk() if show_trace else None
    status = trio.run(
        partial(
            run_until_signal,
            partial(_call_flow, event_format, target or DemoTarget()),
            interrupted_status=130,
        )
    )
    if status:
        return status
    if exporter is not None:
        from ..tracing import format_span_tree

        _say("\ntrace:")
        _say(format_span_tree(exporter.get_finished_spans()))
    elif show_trace:
        _say("\n(install opentelemetry-sdk to see the trace)")
    return 0
