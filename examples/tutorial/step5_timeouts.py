"""Tutorial step 5: cancellation and timeouts, and the outcome on each span.

Every channel operation is a cancel scope. Its own `timeout=` raises OperationTimeout (a
TimeoutError); your enclosing `move_on_after` cancels it like any trio call. Either way the
playback stops on the switch too (uuid_break), and the operation's span says how it ended:
`wait.result` is `matched`, `timeout`, `cancelled`, `hangup`, `connection_lost` or `error`.

    uv run python examples/tutorial/step5_timeouts.py --calls 1
    uv run genesis-trio fake-switch --port 8022 --call-socket 127.0.0.1:8084
    fs_cli -x "originate {outbound_port=8084}loopback/9000/default &park"   # a real switch
"""

from __future__ import annotations

import argparse

import trio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genesis_trio import OperationTimeout, Outbound, Session

LONG = "tone_stream://%(1000,0,440);loops=-1"  # plays until stopped (1 s on the fake)

spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)


async def handler(session: Session) -> None:
    channel = session.channel
    await channel.answer()
    try:
        await channel.playback(LONG, timeout=0.5)  # the operation's own deadline
    except OperationTimeout as error:
        print("timeout:", error, flush=True)
    with trio.move_on_after(0.5) as scope:  # your deadline: a plain trio cancel scope
        await channel.playback(LONG)
    print("cancelled by move_on_after:", scope.cancelled_caught, flush=True)
    await channel.playback("silence_stream://200")  # this one finishes
    await channel.hangup()
    for span in spans.get_finished_spans():
        if span.attributes and span.name.startswith("channel."):
            print(f"  span {span.name}: wait.result={span.attributes.get('wait.result')}")
    spans.clear()


async def serve(host: str, port: int, calls: int | None) -> None:
    """Serve until Ctrl-C, or until ``calls`` calls were handled."""
    done = 0
    all_done = trio.Event()

    async def counted(session: Session) -> None:
        nonlocal done
        try:
            await handler(session)
        finally:
            done += 1
            if calls is not None and done >= calls:
                all_done.set()

    async with trio.open_nursery() as nursery:
        listening = await nursery.start(Outbound(counted, host, port).serve)
        print(f"outbound server on {listening[0]}:{listening[1]}", flush=True)
        await all_done.wait()
        nursery.cancel_scope.cancel()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listen-host", default="127.0.0.1", help="where to listen")
    parser.add_argument("--listen-port", type=int, default=8084, help="port to listen on")
    parser.add_argument("--calls", type=int, default=None, help="stop after this many calls")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    trio.run(serve, args.listen_host, args.listen_port, args.calls)
