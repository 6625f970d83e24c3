"""DTMF: sending digits, and handlers run for the digits the channel receives."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from .. import tracing
from .._exceptions import ConnectionLost, GenesisError, LocalProtocolError
from .._subscription import Subscription
from .._util import logger
from ..protocol import Event
from ._core import ChannelCore

__all__ = ["Dtmf", "DtmfHandler"]

DtmfHandler = Callable[[str], Awaitable[object]]
_H = TypeVar("_H", bound=DtmfHandler)

_DTMF_DIGITS = re.compile(r"[0-9A-Da-d*#wW]+")
_DTMF_DIGIT = re.compile(r"[0-9A-Da-d*#]")


class Dtmf(ChannelCore):
    """Digits out (``send_dtmf``) and in (``on_dtmf`` handlers, each call in its own task)."""

    async def send_dtmf(self, digits: str, *, duration_ms: int | None = None) -> None:
        """Send DTMF to the channel (``uuid_send_dtmf``); ``w``/``W`` pause 0.5 s / 1 s."""
        if _DTMF_DIGITS.fullmatch(digits) is None:
            raise LocalProtocolError(f"invalid DTMF digits {digits!r}")
        suffix = "" if duration_ms is None else f"@{int(duration_ms)}"
        await self._api_on_channel(f"uuid_send_dtmf {self.uuid} {digits}{suffix}")

    def on_dtmf(self, digit: str | None = None) -> Callable[[_H], _H]:
        """Decorator: run ``await handler(digit)`` for each DTMF digit (or only ``digit``).

        Each call runs in its own task, owned by the connection that carries
        the channel (an outbound session's task group, or the Inbound
        client's); a handler that raises is logged. Handlers stop after the
        channel hangs up.
        """
        if digit is not None and _DTMF_DIGIT.fullmatch(digit) is None:
            raise LocalProtocolError(f"invalid DTMF digit {digit!r}")

        def register(handler: _H) -> _H:
            self.add_dtmf_handler(handler, digit=digit)
            return handler

        return register

    def add_dtmf_handler(self, handler: DtmfHandler, *, digit: str | None = None) -> None:
        """The non-decorator form of :meth:`on_dtmf`."""
        if self._status.hung_up or self._released:
            return

        def wanted(event: Event) -> bool:
            return event.name == "DTMF" and (digit is None or event.get("DTMF-Digit") == digit)

        subscription = self._connection.subscribe(uuid=self.uuid, matches=wanted, max_buffer=1000)
        self._dtmf_subscriptions.append(subscription)
        self._start_soon(f"dtmf handler of {self.uuid}", self._dtmf_worker, subscription, handler)

    async def _dtmf_worker(self, subscription: Subscription[Event], handler: DtmfHandler) -> None:
        try:
            async with anyio.create_task_group() as calls:
                while True:
                    try:
                        event = await subscription.receive()
                    except (ConnectionLost, anyio.ClosedResourceError):
                        break
                    except GenesisError as exc:
                        logger.error("DTMF handler of %s stopped: %s", self.uuid, exc)
                        break
                    pressed = event.get("DTMF-Digit")
                    if pressed:
                        calls.start_soon(self._call_dtmf_handler, handler, pressed)
        finally:
            subscription.close()
            if subscription in self._dtmf_subscriptions:
                self._dtmf_subscriptions.remove(subscription)

    async def _call_dtmf_handler(self, handler: DtmfHandler, digit: str) -> None:
        try:
            with tracing.channel_dtmf_received(self.uuid, digit, connection=self._connection):
                await handler(digit)
        except Exception:
            logger.exception("DTMF handler %r failed on channel %s", handler, self.uuid)
