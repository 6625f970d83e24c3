"""Running user apps (Consumer / Outbound) and the fake switch from the CLI."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import trio

from ._run import CLIError, report_user_error, run_until_signal
from ._telemetry import configure_from_environment

__all__ = ["CLIError", "find_app", "run_app"]

logger = logging.getLogger("genesis_trio.cli")


def _load_module(target: str) -> ModuleType:
    path = Path(target)
    if path.suffix == ".py" or path.is_file():
        if not path.is_file():
            raise CLIError(f"no such file: {path}")
        sys.path.insert(0, str(path.resolve().parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise CLIError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise CLIError(f"cannot import {target!r}: {exc}") from None


def find_app(target: str, kind: type[Any], name: str | None) -> Any:
    """The ``kind`` instance named ``name`` in ``target``, or the only one there."""
    module = _load_module(target)
    if name is not None:
        app = getattr(module, name, None)
        if not isinstance(app, kind):
            raise CLIError(f"{target} has no {kind.__name__} named {name!r}")
        return app
    found = [value for value in vars(module).values() if isinstance(value, kind)]
    if len(found) != 1:
        raise CLIError(
            f"found {len(found)} {kind.__name__} objects in {target}; name one with --app"
        )
    return found[0]


DEFAULT_OPS_PORT = 8000


def _run_app_once(args: argparse.Namespace) -> int:
    ops_port = args.ops_port = _resolve_ops_port(args.ops_port)
    configure_from_environment(prometheus=bool(ops_port))
    if args.command == "consumer":
        from .._consumer import Consumer

        consumer = find_app(args.path, Consumer, args.app)
        consumer.host, consumer.port = args.host, args.port
        if args.password is not None:
            consumer.password = args.password
        if args.reconnect and not consumer.reconnect:
            consumer.reconnect = True
        if args.liveness_timeout is not None:
            if not args.liveness_timeout:
                raise CLIError("--liveness-timeout must be positive")
            consumer.liveness_timeout = args.liveness_timeout
        ops = _ops_server(args, consumer, ready_window=args.ready_window)
        running = trio.CancelScope()

        async def consume() -> None:
            with running:
                await _with_ops(ops, consumer.run)

        return trio.run(run_until_signal, consume, partial(_stop_consumer, consumer, running))
    import genesis_trio

    outbound_type = genesis_trio.__dict__.get("Outbound")
    if outbound_type is None:
        raise CLIError("this build of genesis_trio has no Outbound server")
    outbound = find_app(args.path, outbound_type, args.app)
    outbound.host, outbound.port = args.host, args.port
    ops = _ops_server(args, outbound)
    return trio.run(
        run_until_signal,
        partial(_with_ops, ops, outbound.serve),
        partial(_drain, outbound, args.drain_timeout),
    )


def _ops_extra_installed() -> bool:
    try:
        import hypercorn  # noqa: F401
        import opentelemetry.exporter.prometheus  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve_ops_port(requested: int | None) -> int:
    """The port asked for (flag or env); when none was, 8000 if the ops extra is there.

    An app installed without the extra still runs: only an explicit port needs it.
    """
    if requested is None:
        if _ops_extra_installed():
            return DEFAULT_OPS_PORT
        print(
            "genesis-trio: no /health, /ready, /metrics: install genesis-trio[ops] to serve them "
            f"on port {DEFAULT_OPS_PORT} (or choose one with --ops-port)",
            file=sys.stderr,
        )
        return 0
    if requested and not _ops_extra_installed():
        raise CLIError("the ops endpoints need genesis-trio[ops] (or pass --ops-port 0)")
    return requested


def _ops_server(args: argparse.Namespace, app: Any, **options: Any) -> Any:
    if not args.ops_port:
        return None
    from ..ops import OpsServer

    return OpsServer(app, args.ops_host, args.ops_port, **options)


async def _with_ops(ops: Any, serve: Callable[[], Awaitable[object]]) -> None:
    """Run ``serve``; the ops endpoints live exactly as long, in the same task group."""
    if ops is None:
        await serve()
        return
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(ops.serve)
        logger.info("ops endpoints on http://%s:%s (/health, /ready, /metrics)", host, port)
        await serve()
        nursery.cancel_scope.cancel()


async def _stop_consumer(consumer: Any, running: trio.CancelScope) -> int:
    """Unsubscribe (so the switch stops queueing events for us), then stop."""
    client = consumer.client
    if client is not None:
        # A switch that is gone or slow must not hold the exit up.
        with trio.move_on_after(2), contextlib.suppress(Exception):
            await client.noevents()
    running.cancel()
    return 0


async def _drain(outbound: Any, grace: float) -> int:
    clean = await outbound.drain(grace)
    return 0 if clean else 1


def _run_in_child(args: argparse.Namespace) -> None:
    sys.exit(_run_app_once(args))


def run_app(args: argparse.Namespace) -> int:
    try:
        if args.reload:
            try:
                import watchfiles
            except ImportError:
                raise CLIError("--reload needs watchfiles: install genesis-trio[reload]") from None

            watch_root = Path(args.path).resolve()
            watch_dir = watch_root.parent if watch_root.is_file() else Path.cwd()
            # A fresh process per change: no stale module state, nothing half-reloaded.
            watchfiles.run_process(watch_dir, target=_run_in_child, args=(args,))
            return 0
        return _run_app_once(args)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return report_user_error(args.command, exc)
