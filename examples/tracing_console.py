"""Tracing to the console: the specification's Console exporter example, on trio.

Configures the OpenTelemetry SDK with a ConsoleSpanExporter (every finished
span is printed as JSON), connects an Inbound client, runs ``uptime`` and a
short call, then prints the same spans as a tree. Runs against the built-in
fake FreeSWITCH by default; pass --host/--port/--password to use a real one, and --dial
for the call to place there (none by default: a real switch may not have user/1001):

    uv run python examples/tracing_console.py [--host H --port P --password PW] [--dial D]

Needs opentelemetry-sdk (a dev dependency; ``pip install genesis-trio[otel]``).
"""

from __future__ import annotations

import argparse
from contextlib import AsyncExitStack

import trio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genesis_trio import Inbound, tracing
from genesis_trio.testing import Destination, FakeFreeSWITCH

provider = TracerProvider()
processor = SimpleSpanProcessor(ConsoleSpanExporter())
provider.add_span_processor(processor)
collected = InMemorySpanExporter()  # only for the tree printed at the end
provider.add_span_processor(SimpleSpanProcessor(collected))
trace.set_tracer_provider(provider)


async def main(host: str | None, port: int, password: str, dial: str | None) -> None:
    async with AsyncExitStack() as stack:
        if host is None:
            fake = await stack.enter_async_context(FakeFreeSWITCH(password=password).running())
            fake.add_destination("user/1001", Destination(answer_after=0.2))
            host, port = fake.host, fake.port
            dial = dial or "user/1001"
        tracer = trace.get_tracer("examples.tracing_console")
        # Our spans attach to whatever span is current: this one is the request's.
        with tracer.start_as_current_span("example.request"):
            async with Inbound(host, port, password) as client:
                await client.api("uptime")
                if dial is not None:
                    await call(client, dial)


async def call(client: Inbound, dial: str) -> None:
    """Originate from inside a channel.create span: the call's own spans join this trace."""
    await client.events("ALL")
    async with client.subscribe("CHANNEL_DESTROY", request=False) as destroyed:
        with tracing.channel_create(
            dial, has_variables=True, connection=client.connection
        ) as create:
            variables = ",".join(f"{k}={v}" for k, v in create.trace_variables().items())
            reply = await client.api(f"originate {{{variables}}}{dial} &park")
            uuid = reply.split()[1]
            create.set(tracing.names.CHANNEL_UUID, uuid)
        print(f"call {uuid} to {dial} answered; hanging up")
        await client.api(f"uuid_kill {uuid}")
        # A real switch sends every call's events: wait for this one's.
        async for event in destroyed:
            if event.unique_id == uuid:
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=None, help="FreeSWITCH host (default: the fake)")
    parser.add_argument("--port", type=int, default=8021, help="ESL port (default 8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    parser.add_argument("--dial", default=None, help="call this (default: user/1001 on the fake)")
    args = parser.parse_args()
    trio.run(main, args.host, args.port, args.password, args.dial)
    provider.force_flush()
    print("\nThe same spans as a tree:")
    print(tracing.format_span_tree(collected.get_finished_spans(), attributes=False))
