"""What a reconnecting Inbound needs: its backoff policy and the liveness watchdog."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
from opentelemetry.metrics import MeterProvider

from . import tracing
from ._exceptions import ConnectionLost

__all__ = ["Backoff", "LivenessStream", "count_reconnect"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How a reconnecting client spaces its connection attempts.

    The n-th attempt in a row (from 0) waits ``min(maximum, initial * factor ** n)``
    seconds, shortened at random by up to ``jitter`` of it (0.2: each wait is
    between 80 % and 100 % of its step), so that many clients of one switch do not
    all come back at the same instant. A connection that stayed up for at least
    ``healthy_after`` seconds starts the series over at ``initial`` when it is lost.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    healthy_after: float = 10.0

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise ValueError("Backoff.initial must be positive")
        if not self.maximum >= self.initial:
            raise ValueError("Backoff.maximum must be at least Backoff.initial")
        if not self.factor >= 1:
            raise ValueError("Backoff.factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Backoff.jitter must be between 0 and 1")
        if not self.healthy_after >= 0:
            raise ValueError("Backoff.healthy_after must not be negative")

    def step(self, attempt: int) -> float:
        """The wait before attempt ``attempt`` (from 0), before jitter."""
        try:
            return min(self.maximum, self.initial * self.factor**attempt)
        except OverflowError:
            return self.maximum

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before attempt ``attempt`` (from 0), jitter applied."""
        step = self.step(attempt)
        if not self.jitter:
            return step
        draw = (rng or random).random()
        return step * (1 - self.jitter * draw)


class LivenessStream(anyio.abc.ByteStream):
    """A byte stream whose ``receive`` fails when nothing arrives for ``timeout`` seconds.

    The connection's reader is always waiting in ``receive`` between frames, so
    this is the whole watchdog: no task of its own, and the silence is measured
    from the last bytes received. The failure is a BrokenResourceError, which the
    reader turns into ConnectionLost like any broken transport.
    """

    def __init__(self, stream: anyio.abc.ByteStream, timeout: float) -> None:
        if not timeout > 0:
            raise ValueError("liveness_timeout must be positive (or None)")
        self._stream = stream
        self.timeout = timeout

    async def receive(self, max_bytes: int = 65536) -> bytes:
        with anyio.move_on_after(self.timeout):
            return await self._stream.receive(max_bytes)
        raise anyio.BrokenResourceError(
            f"nothing received for {self.timeout:g} s (liveness_timeout): the peer is presumed dead"
        )

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Any]:
        return self._stream.extra_attributes


def count_reconnect(error: BaseException | None, meter_provider: MeterProvider | None) -> None:
    """genesis.connections.reconnects (and .errors for a failed attempt)."""
    if error is not None:
        # As for the first connect (inbound_connect): an attempt that never got an
        # authenticated connection failed to connect; it lost nothing.
        failed = "connect_failed" if isinstance(error, ConnectionLost) else error
        tracing.record_connection_error("inbound", failed, meter_provider=meter_provider)
    tracing.record_reconnect("inbound", succeeded=error is None, meter_provider=meter_provider)
