"""Argument parsing for ``genesis-trio``.

The CLI is the only place that configures logging and the OpenTelemetry SDK;
the library itself only ever uses the API.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__


def _add_connection_options(parser: argparse.ArgumentParser, *, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="FreeSWITCH host (default %(default)s)")
    parser.add_argument("--port", type=int, default=port, help="port (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesis-trio",
        description="Structured-concurrency FreeSWITCH ESL apps on trio.",
    )
    parser.add_argument("--version", action="version", version=f"genesis-trio {__version__}")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="logging level (default %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a call flow against the built-in fake FreeSWITCH and print its trace",
    )
    demo.add_argument(
        "--format", choices=["plain", "json", "xml"], default="plain", help="event format"
    )
    demo.add_argument("--no-trace", action="store_true", help="do not print the trace tree")

    fake = commands.add_parser("fake-switch", help="run the built-in fake FreeSWITCH")
    _add_connection_options(fake, port=8021)
    fake.add_argument("--password", default="ClueCon")

    consumer = commands.add_parser("consumer", help="run a Consumer app from a Python file")
    consumer.add_argument("path", help="a .py file or module path holding a Consumer")
    consumer.add_argument("--app", help="the Consumer's variable name (found if omitted)")
    _add_connection_options(consumer, port=8021)
    consumer.add_argument("--password", default=None, help="ESL password (default: the app's)")
    consumer.add_argument("--reload", action="store_true", help="restart when files change")

    outbound = commands.add_parser("outbound", help="run an Outbound app from a Python file")
    outbound.add_argument("path", help="a .py file or module path holding an Outbound")
    outbound.add_argument("--app", help="the Outbound's variable name (found if omitted)")
    _add_connection_options(outbound, port=8084)
    outbound.add_argument("--reload", action="store_true", help="restart when files change")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "demo":
            from ._demo import run_demo

            return run_demo(event_format=args.format, show_trace=not args.no_trace)
        if args.command == "fake-switch":
            from ._apps import run_fake_switch

            return run_fake_switch(args.host, args.port, args.password)
        from ._apps import run_app

        return run_app(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
