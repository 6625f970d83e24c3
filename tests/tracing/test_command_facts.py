"""A command's span attributes, metric labels and tally key are worked out once per label
(``_command_facts``, cached): they must be what the label says, every time, and nothing a
span or the SDK does to one command's attributes may reach the next command's."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from genesis_trio.protocol import ApiResponse, Headers
from genesis_trio.tracing import ConnectionTelemetry
from genesis_trio.tracing._connection import _command_facts


def _plain_facts(label: str) -> tuple[str, dict[str, str], dict[str, str], object]:
    """The facts as observe_command worked them out per command before the cache."""
    name = label.split(" ", 1)[0] or "unknown"
    attributes = {"command.name": name}
    if name in ("api", "bgapi"):
        words = label.split(" ", 2)
        if len(words) > 1 and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", words[1]):
            attributes["command.api"] = words[1]
    return name, attributes, {"command": name}, (("command", name),)


_WORDS = st.sampled_from(["api", "bgapi", "status", "uuid_kill", "", "x" * 70, "é", "a-b", "1x"])


@settings(max_examples=300, deadline=None)
@given(
    label=st.one_of(st.text(max_size=40), st.lists(_WORDS, max_size=4).map(" ".join)),
    again=st.booleans(),
)
def test_the_facts_are_what_the_label_says(label: str, again: bool) -> None:
    if again:
        _command_facts(label)  # the second lookup comes from the cache
    assert _command_facts(label) == _plain_facts(label)


class _Tagging(Sampler):
    """A sampler that writes into the attributes it is given (as a sampler may)."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: object = None,
    ) -> SamplingResult:
        assert isinstance(attributes, dict)
        attributes["sampler.seen"] = attributes.get("sampler.seen", 0) + 1
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "tagging"


def _drive(telemetry: ConnectionTelemetry, label: str, reply: ApiResponse) -> None:
    async def send(data: bytes, label: str) -> ApiResponse:
        return reply

    observed = telemetry.observe_command(send, b"api status\n\n", label)
    try:
        observed.send(None)
    except StopIteration:
        pass
    else:  # pragma: no cover - nothing in it waits
        raise AssertionError("observe_command waited")


def test_a_sampler_writing_into_one_commands_attributes_does_not_reach_the_next() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=_Tagging())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = ConnectionTelemetry.create("inbound", tracer_provider=provider)
    assert telemetry is not None
    reply = ApiResponse(Headers({"Content-Type": "api/response"}), "UP 0 years\n")
    for _ in range(3):
        _drive(telemetry, "api status", reply)
    attributes: list[Mapping[str, object]] = [
        dict(span.attributes or {}) for span in exporter.get_finished_spans()
    ]
    assert (
        attributes
        == [
            {
                "command.name": "api",
                "command.api": "status",
                "sampler.seen": 1,
                "command.reply": "+OK",
            }
        ]
        * 3
    )
    assert _command_facts("api status")[1] == {"command.name": "api", "command.api": "status"}
