"""Running a command's trio program: signals, and user mistakes as one line.

SIGINT and SIGTERM are taken over while the program runs (no KeyboardInterrupt
raised into some task and wrapped in exception groups): the first one calls
the command's ``graceful`` stop (or cancels it when it has none), a second one
cancels whatever is left. Stopping on a signal exits 0 unless the command says
otherwise.
"""

from __future__ import annotations

import errno
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

from .._exceptions import AuthenticationError, ConnectionLost, ConnectTimeout

logger = logging.getLogger("genesis_trio.cli")

__all__ = ["CLIError", "report_user_error", "run_until_signal", "user_error"]


class CLIError(Exception):
    """A problem with what the user asked the CLI to run (or how it is installed)."""


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str | None:
    if isinstance(exc, CLIError | AuthenticationError | ConnectTimeout):
        return str(exc)
    if isinstance(exc, ConnectionLost):
        return str(exc) or "lost the connection to FreeSWITCH"
    if isinstance(exc, OSError):
        if exc.errno == errno.ECONNREFUSED:
            return f"nobody is listening there: {exc}"
        return str(exc)
    return None


def user_error(exc: BaseException) -> str | None:
    """One line for a mistake the user can fix, or None for a bug (a traceback is right)."""
    lines = [_describe(leaf) for leaf in _leaves(exc)]
    if not lines or any(line is None for line in lines):
        return None
    return str(lines[0])


def report_user_error(command: str, exc: BaseException) -> int:
    """Print ``exc`` as one line and return the exit status, or re-raise a bug."""
    line = user_error(exc)
    if line is None:
        raise exc
    print(f"genesis-trio {command}: {line}", file=sys.stderr, flush=True)
    return 2 if isinstance(exc, CLIError) else 1


async def run_until_signal(
    body: Callable[[], Awaitable[int | None]],
    graceful: Callable[[], Awaitable[int | None]] | None = None,
    *,
    interrupted_status: int = 0,
) -> int:
    """Run ``body``; on SIGINT/SIGTERM run ``graceful`` (which should make ``body`` end).

    Returns ``body``'s status, or ``graceful``'s (default 0) when a signal stopped it
    (``interrupted_status`` when there is no ``graceful``).
    A second signal cancels everything at once.
    """
    signalled = False
    graceful_status: int | None = 0
    graceful_done = trio.Event()
    result: int | None = 0

    async with trio.open_nursery() as nursery:

        async def stop_gracefully() -> None:
            nonlocal graceful_status
            assert graceful is not None
            try:
                graceful_status = await graceful()
            finally:
                graceful_done.set()

        async def watch(signals: AsyncIterator[int]) -> None:
            nonlocal signalled
            async for signum in signals:
                logger.info("got %s, stopping", signal.Signals(signum).name)
                if not signalled and graceful is not None:
                    nursery.start_soon(stop_gracefully)
                else:
                    nursery.cancel_scope.cancel()
                signalled = True

        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            nursery.start_soon(watch, signals)
            result = await body()
            if signalled and graceful is not None:
                # ``body`` ended because of the graceful stop, which reports the status.
                await graceful_done.wait()
            nursery.cancel_scope.cancel()
    if signalled:
        return graceful_status or 0 if graceful is not None else interrupted_status
    return result or 0
