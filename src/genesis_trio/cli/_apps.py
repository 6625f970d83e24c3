"""Running user apps (Consumer / Outbound) and the fake switch from the CLI."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import trio

from ._telemetry import configure_from_environment


class CLIError(Exception):
    """A problem with what the user asked the CLI to run."""


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


def _run_app_once(
    command: str, path: str, app_name: str | None, host: str, port: int, password: str | None
) -> None:
    configure_from_environment()
    if command == "consumer":
        from .._consumer import Consumer

        consumer = find_app(path, Consumer, app_name)
        consumer.host, consumer.port = host, port
        if password is not None:
            consumer.password = password
        trio.run(consumer.run)
        return
    import genesis_trio

    outbound_type = genesis_trio.__dict__.get("Outbound")
    if outbound_type is None:
        raise CLIError("this build of genesis_trio has no Outbound server")
    outbound = find_app(path, outbound_type, app_name)
    outbound.host, outbound.port = host, port
    trio.run(outbound.run)


def run_app(args: argparse.Namespace) -> int:
    password = getattr(args, "password", None)
    call_args = (args.command, args.path, args.app, args.host, args.port, password)
    try:
        if args.reload:
            import watchfiles

            watch_root = Path(args.path).resolve()
            watch_dir = watch_root.parent if watch_root.is_file() else Path.cwd()
            # A fresh process per change: no stale module state, nothing half-reloaded.
            watchfiles.run_process(watch_dir, target=_run_app_once, args=call_args)
        else:
            _run_app_once(*call_args)
    except CLIError as exc:
        print(f"genesis-trio: {exc}", file=sys.stderr)
        return 2
    return 0
