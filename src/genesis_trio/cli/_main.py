"""Argument parsing for ``genesis-trio``.

The CLI is the only place that configures logging and the OpenTelemetry SDK;
the library itself only ever uses the API.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ._logging import configure_logging
from ._run import CLIError, report_user_error


def _env(name: str, default: str | None) -> str | None:
    """Flag > environment > default: the environment only changes the default."""
    return os.environ.get(name) or default


def _add_connection_options(
    parser: argparse.ArgumentParser, *, port: int, env_prefix: str | None = None
) -> None:
    host_env = f"{env_prefix}_HOST" if env_prefix else None
    port_env = f"{env_prefix}_PORT" if env_prefix else None
    parser.add_argument(
        "--host",
        default=_env(host_env, "127.0.0.1") if host_env else "127.0.0.1",
        help=f"host (default %(default)s{'; env ' + host_env if host_env else ''})",
    )
    parser.add_argument(
        "--port",
        type=_port,
        # argparse converts a string default with ``type``: a bad variable is refused too.
        default=_env(port_env, str(port)) if port_env else port,
        help=f"port (default %(default)s{'; env ' + port_env if port_env else ''})",
    )


def _add_ops_options(parser: argparse.ArgumentParser) -> None:
    ops = parser.add_argument_group("operations endpoints (/health, /ready, /metrics)")
    ops.add_argument(
        "--ops-port",
        type=_port,
        # None: 8000 when genesis-trio[ops] is installed, else off (with a one-line notice).
        default=_env("ESL_OPS_PORT", None),
        metavar="N",
        help="HTTP port of the ops endpoints, 0 = off (default 8000 when genesis-trio[ops] is "
        "installed, else off; env ESL_OPS_PORT)",
    )
    ops.add_argument(
        "--ops-host",
        default=_env("ESL_OPS_HOST", "127.0.0.1"),
        metavar="H",
        help="where they listen (default %(default)s; env ESL_OPS_HOST)",
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text}")
    return value


_FAKE_SWITCH_DESCRIPTION = """\
Run the built-in fake FreeSWITCH: inbound ESL on HOST:PORT, like a real switch.

Routes: loopback/<ext>/default runs the real test switch's dialplan (9000 connects
to an outbound app on 127.0.0.1:${outbound_port}, else --outbound-port; 9001..9010;
socket-N); user/<n> answers after --answer-delay seconds. It can also make calls:

  --call-socket HOST:PORT   calls into your outbound app (as the dialplan's
                            `socket HOST:PORT async full` would), then exits
                            when they ended (0 if one was answered)
  --traffic R               R background calls per second between user/1000
                            and user/1001, so a Consumer has events to see
  --dtmf DEST=DIGITS        the far end of DEST presses DIGITS --dtmf-after
                            seconds after the answer: DEST is a dial path or
                            pattern (user/1001, user/*) or, for --call-socket
                            calls, the destination number (9000)

examples:
  genesis-trio fake-switch
  genesis-trio fake-switch --traffic 2
  genesis-trio fake-switch --call-socket 127.0.0.1:8084 --calls 3 --rate 1 --dtmf 9000=1
"""


def _address(text: str) -> tuple[str, int]:
    from ._fake_switch import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _dtmf(text: str) -> tuple[str, str]:
    from ._fake_switch import parse_dtmf

    try:
        return parse_dtmf(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _env_true(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text}")
        return value

    return parse


def _add_fake_switch_parser(commands: Any) -> None:
    fake = commands.add_parser(
        "fake-switch",
        help="run the built-in fake FreeSWITCH (it can also call your outbound app)",
        description=_FAKE_SWITCH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_connection_options(fake, port=8021)
    fake.add_argument("--password", default="ClueCon", help="ESL password (default %(default)s)")
    fake.add_argument(
        "--answer-delay",
        type=_positive(float),
        default=1.0,
        metavar="S",
        help="seconds user/<n> rings before it answers (default %(default)s)",
    )
    fake.add_argument(
        "--outbound-port",
        type=int,
        default=8084,
        metavar="N",
        help="where extension 9000 connects without ${outbound_port} (default %(default)s)",
    )
    calls = fake.add_argument_group("calls into an outbound app")
    calls.add_argument("--call-socket", type=_address, metavar="HOST:PORT")
    calls.add_argument(
        "--calls", type=_positive(int), default=1, metavar="N", help="how many (default 1)"
    )
    calls.add_argument(
        "--rate", type=_positive(float), default=1.0, metavar="R", help="per second (default 1)"
    )
    calls.add_argument("--caller", default="1000", help="caller ID number (default %(default)s)")
    calls.add_argument(
        "--destination", default="9000", help="destination number (default %(default)s)"
    )
    calls.add_argument(
        "--call-duration",
        type=_positive(float),
        default=None,
        metavar="S",
        help="the caller hangs up after S seconds (default: when the app hangs up)",
    )
    calls.add_argument(
        "--keep-serving", action="store_true", help="keep serving after the calls ended"
    )
    fake.add_argument(
        "--traffic", type=_positive(float), default=0.0, metavar="R", help="background calls/s"
    )
    fake.add_argument(
        "--dtmf",
        type=_dtmf,
        action="append",
        default=[],
        metavar="DEST=DIGITS",
        help="digits the far end of DEST presses (repeatable)",
    )
    fake.add_argument(
        "--dtmf-after",
        type=_positive(float),
        default=1.0,
        metavar="S",
        help="seconds after the answer (default %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesis-trio",
        description="Structured-concurrency FreeSWITCH ESL apps on trio.",
    )
    parser.add_argument("--version", action="version", version=f"genesis-trio {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.lower,
        default=_env("ESL_LOG_LEVEL", "warning"),
        choices=["debug", "info", "warning", "error"],
        help="logging level (default %(default)s; env ESL_LOG_LEVEL)",
    )
    parser.add_argument(
        "--log-format",
        type=str.lower,
        default=_env("ESL_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="log lines as text or one JSON object each (default %(default)s; env ESL_LOG_FORMAT)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a call flow against the built-in fake FreeSWITCH (or a real one, with --host) "
        "and print its trace",
    )
    demo.add_argument(
        "--format", choices=["plain", "json", "xml"], default="plain", help="event format"
    )
    demo.add_argument("--no-trace", action="store_true", help="do not print the trace tree")
    demo.add_argument(
        "--host", default=None, help="a real FreeSWITCH's ESL host (default: the built-in fake)"
    )
    demo.add_argument("--port", type=int, default=8021, help="ESL port (default %(default)s)")
    demo.add_argument("--password", default="ClueCon", help="ESL password")
    demo.add_argument(
        "--dial",
        default=None,
        help="who to call (default: user/1001 on the fake, loopback/9002/default on a real switch)",
    )
    demo.add_argument(
        "--playback",
        default=None,
        help="what to play (default: ivr/welcome.wav on the fake, a tone on a real switch)",
    )

    _add_fake_switch_parser(commands)

    consumer = commands.add_parser("consumer", help="run a Consumer app from a Python file")
    consumer.add_argument("path", help="a .py file or module path holding a Consumer")
    consumer.add_argument(
        "--app",
        default=_env("ESL_APP_NAME", None),
        help="the Consumer's variable name (found if omitted; env ESL_APP_NAME)",
    )
    _add_connection_options(consumer, port=8021, env_prefix="ESL")
    consumer.add_argument(
        "--password",
        default=_env("ESL_PASSWORD", None),
        help="ESL password (default: the app's; env ESL_PASSWORD)",
    )
    _add_ops_options(consumer)
    consumer.add_argument(
        "--ready-window",
        type=_positive(float),
        default=_env("ESL_READY_WINDOW", "30"),
        metavar="S",
        help="/ready needs an event (HEARTBEAT: every 20 s) within S seconds "
        "(default %(default)s; env ESL_READY_WINDOW)",
    )
    consumer.add_argument(
        "--reconnect",
        action="store_true",
        default=_env_true("ESL_RECONNECT"),
        help="re-establish a lost connection with backoff, whatever the app says "
        "(env ESL_RECONNECT=1)",
    )
    consumer.add_argument(
        "--liveness-timeout",
        type=_positive(float),
        default=_env("ESL_LIVENESS_TIMEOUT", None),
        metavar="S",
        help="a connection on which nothing arrived for S seconds is dead (HEARTBEAT: every "
        "20 s; default: the app's; env ESL_LIVENESS_TIMEOUT)",
    )
    consumer.add_argument("--reload", action="store_true", help="restart when files change")

    outbound = commands.add_parser("outbound", help="run an Outbound app from a Python file")
    outbound.add_argument("path", help="a .py file or module path holding an Outbound")
    outbound.add_argument(
        "--app",
        default=_env("ESL_APP_NAME", None),
        help="the Outbound's variable name (found if omitted; env ESL_APP_NAME)",
    )
    _add_connection_options(outbound, port=8084, env_prefix="ESL_APP")
    outbound.add_argument(
        "--drain-timeout",
        type=_positive(float),
        default=_env("ESL_DRAIN_TIMEOUT", "30"),
        metavar="S",
        help="on SIGTERM/SIGINT, seconds live calls get to finish before they are cancelled "
        "(default %(default)s; env ESL_DRAIN_TIMEOUT)",
    )
    _add_ops_options(outbound)
    outbound.add_argument("--reload", action="store_true", help="restart when files change")
    return parser


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # argparse checks ``choices`` on what the user typed, not on a default from the environment.
    if args.log_level not in ("debug", "info", "warning", "error"):
        parser.error(f"ESL_LOG_LEVEL: invalid level {args.log_level!r}")
    if args.log_format not in ("text", "json"):
        parser.error(f"ESL_LOG_FORMAT: invalid format {args.log_format!r}")
    try:
        configure_logging(args.log_level, args.log_format)
    except CLIError as exc:
        return report_user_error(args.command, exc)
    try:
        if args.command == "demo":
            from ._demo import DemoTarget, run_demo

            target = DemoTarget(args.host, args.port, args.password, args.dial, args.playback)
            return run_demo(event_format=args.format, show_trace=not args.no_trace, target=target)
        if args.command == "fake-switch":
            from ._fake_switch import FakeSwitchOptions, run_fake_switch

            return run_fake_switch(
                FakeSwitchOptions(
                    host=args.host,
                    port=args.port,
                    password=args.password,
                    answer_delay=args.answer_delay,
                    call_socket=args.call_socket,
                    calls=int(args.calls),
                    rate=args.rate,
                    caller=args.caller,
                    destination=args.destination,
                    call_duration=args.call_duration,
                    traffic=args.traffic,
                    dtmf=tuple(args.dtmf),
                    dtmf_after=args.dtmf_after,
                    keep_serving=args.keep_serving,
                    outbound_port=args.outbound_port,
                )
            )
        from ._apps import run_app

        return run_app(args)
    except BaseException as exc:
        # Ctrl-C before trio took the signal over (imports, start-up): no traceback.
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in _leaves(exc)):
            return 130
        raise


if __name__ == "__main__":
    sys.exit(main())
