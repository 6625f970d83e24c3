"""Media time on a channel: playing, ``uuid_break``, and the DTMF the caller presses."""

from __future__ import annotations

import anyio

from ._channel_core import HostT
from ._channel_lifecycle import ChannelLifecycle
from ._errors import MediaBroken

__all__ = ["ChannelMedia"]


class ChannelMedia(ChannelLifecycle[HostT]):
    """What media applications wait on: media time that a break cuts short, and digits."""

    def request_break(self, flush: bool = False) -> None:
        """``uuid_break``: stop the media application running now.

        As in FreeSWITCH the break is a flag: set while an application runs
        but between its media waits, it stops that application's next one;
        every application clears it as it starts, so a break that finds
        nothing running is lost (it never cuts the next prompt). ``flush``
        (``all``) also drops the queued messages.
        """
        self.breaks.append(flush)
        if flush:
            self._queue.clear()
        scope = self._media_scope
        if scope is not None:
            scope.cancel()
        else:
            self._break_pending = True

    async def play_media(self, seconds: float | None, *, until_dtmf: bool = False) -> str:
        """Spend ``seconds`` (None: until stopped) playing: ``"played"``, ``"broken"``
        (``uuid_break``) or, with ``until_dtmf``, ``"digit"`` when the caller pressed one."""
        if self.consume_break():
            return "broken"
        if until_dtmf and self._dtmf:
            return "digit"
        with anyio.CancelScope() as scope:
            self._media_scope = scope
            try:
                if until_dtmf:
                    with anyio.move_on_after(seconds):
                        await self._next_dtmf_arrival()
                        return "digit"
                elif seconds is None:
                    await anyio.sleep_forever()
                else:
                    await anyio.sleep(seconds)
            finally:
                self._media_scope = None
        if scope.cancel_called:
            self._note_broken()
            return "broken"
        return "played"

    def consume_break(self) -> bool:
        if self._break_pending:
            self._break_pending = False
            self._note_broken()
            return True
        return False

    def _note_broken(self) -> None:
        if self._running:
            self._running[-1].interrupted = True

    # --------------------------------------------------------------------- DTMF

    def receive_dtmf(self, digits: str, *, duration_ms: int = 250, source: str = "RTP") -> None:
        """The caller pressed ``digits``: a DTMF event each, and the digits are buffered."""
        for digit in digits:
            self.emit(
                "DTMF",
                after=[
                    ("DTMF-Digit", digit),
                    ("DTMF-Duration", str(duration_ms * 8)),
                    ("DTMF-Source", source),
                ],
                variables=False,
            )
            self._digits_dialed += digit
            self._dtmf.append(digit)
        self._dtmf_changed.set()

    def send_dtmf(self, digits: str) -> None:
        """``uuid_send_dtmf``: the digits go to the far end. The other leg of a loopback
        pair receives them (DTMF events there, source UNKNOWN)."""
        self.dtmf_sent.append(digits)
        # The sending leg remembers the duration it sent (1500 samples, as the test switch).
        self.variables["last_dtmf_duration"] = "1500"
        peer = self.loopback_peer
        if peer is not None and peer.hangup_cause is None:
            peer.receive_dtmf(
                "".join(d for d in digits if d in "0123456789*#ABCDabcd"), source="UNKNOWN"
            )

    async def _next_dtmf_arrival(self) -> None:
        while not self._dtmf:
            self._dtmf_changed = anyio.Event()
            await self._dtmf_changed.wait()

    async def next_dtmf(self, wait: float) -> str | None:
        """The next buffered digit, waiting up to ``wait`` seconds for one.

        Raises :class:`MediaBroken` if a ``uuid_break`` arrives meanwhile.
        """
        if self.consume_break():
            raise MediaBroken
        with anyio.CancelScope() as scope:
            self._media_scope = scope
            try:
                with anyio.move_on_after(wait):
                    await self._next_dtmf_arrival()
            finally:
                self._media_scope = None
        if scope.cancel_called:
            self._note_broken()
            raise MediaBroken
        return self._dtmf.popleft() if self._dtmf else None

    async def _press_scripted_dtmf(self) -> None:
        await self._answered_event.wait()
        await anyio.sleep(self.destination.dtmf_after)
        self.receive_dtmf(self.destination.dtmf)
