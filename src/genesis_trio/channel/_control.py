"""Call control: answer, hang up, bridge, park, and the channel's variables."""

# The API gives every blocking operation a ``timeout=``: it becomes the
# deadline of the operation's own cancel scope (see _outcome.py), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

from .. import tracing
from .._exceptions import CommandError, CommandStage, LocalProtocolError
from ..protocol import Event
from ..protocol import _encoding as encoding
from ._applications import Applications
from ._core import CAUSE, ChannelCore, checked_uuid, is_missing
from ._state import HANGUP_EVENTS, is_hangup

__all__ = ["CallControl"]


class CallControl(Applications):
    """The operations that move a call along (its media: ``_media.py``)."""

    async def answer(self, *, timeout: float | None = None) -> Event:
        """Answer the call; returns the ``answer`` application's completion."""
        span = tracing.channel_answer(
            self.uuid, state=self.state.freeswitch_name, connection=self._connection
        )
        with self._operation(span, "answer", timeout):
            return await self._run_application("answer", None)

    async def pre_answer(self, *, timeout: float | None = None) -> Event:
        """Answer for early media only (183 Session Progress)."""
        with self._operation(None, "pre_answer", timeout):
            return await self._run_application("pre_answer", None)

    async def ring_ready(self, *, timeout: float | None = None) -> Event:
        """Tell the caller it is ringing (180 Ringing)."""
        with self._operation(None, "ring_ready", timeout):
            return await self._run_application("ring_ready", None)

    async def hangup(
        self, cause: str = "NORMAL_CLEARING", *, timeout: float | None = 10.0
    ) -> Event | None:
        """Hang up with ``cause`` and wait until FreeSWITCH reports the hangup.

        Returns the ``CHANNEL_HANGUP`` event (None when the channel was
        already gone, or only the closing outbound socket said so).
        """
        if CAUSE.fullmatch(cause) is None:
            raise LocalProtocolError(f"invalid hangup cause {cause!r}")
        if self._status.hung_up:
            return self._status.milestones.get("CHANNEL_HANGUP")
        span = tracing.channel_hangup(
            self.uuid, cause=cause, state=self.state.freeswitch_name, connection=self._connection
        )
        with self._operation(span, "hangup", timeout):
            await self._ensure_events()
            subscription = self._watch(is_hangup)
            try:
                if self._session_channel:
                    await self._sendmsg([("call-command", "hangup"), ("hangup-cause", cause)])
                else:
                    reply = await self._client.api(f"uuid_kill {self.uuid} {cause}", check=False)
                    if reply.startswith("-ERR"):
                        if is_missing(reply):
                            self._status.mark_gone()
                            return None
                        raise CommandError(f"uuid_kill {self.uuid}", reply.strip())
                return await self._await_match(
                    subscription, is_hangup, what="the hangup", hangup_is_result=True
                )
            finally:
                subscription.close()

    async def _bridge(self, other: ChannelCore | str, *, timeout: float | None) -> Event:
        # Channel.bridge (in _channel.py, where the public type is known) documents this.
        other_uuid = checked_uuid(other.uuid if isinstance(other, ChannelCore) else other)
        span = tracing.channel_bridge(
            self.uuid, other_uuid, state=self.state.freeswitch_name, connection=self._connection
        )
        legs = (self.uuid, other_uuid)
        with self._operation(span, "bridge", timeout):
            await self._ensure_events()
            self._check_alive()
            if isinstance(other, ChannelCore):
                other._check_alive()

            def bridged(event: Event) -> bool:
                return event.name == "CHANNEL_BRIDGE" and {
                    event.get("Bridge-A-Unique-ID"),
                    event.get("Bridge-B-Unique-ID"),
                } >= set(legs)

            def relevant(event: Event) -> bool:
                return event.unique_id in legs and (bridged(event) or is_hangup(event))

            subscription = self._watch(relevant, keys=("CHANNEL_BRIDGE", *HANGUP_EVENTS))
            try:
                reply = await self._client.api(f"uuid_bridge {self.uuid} {other_uuid}", check=False)
                if reply.startswith(("-ERR", "-USAGE")):
                    raise CommandError(f"uuid_bridge {self.uuid} {other_uuid}", reply.strip())
                result = await self._await_match(
                    subscription, bridged, what="the bridge", stage=CommandStage.ACCEPTED
                )
            finally:
                subscription.close()
            assert result is not None
            return result

    async def park(self, *, timeout: float | None = 10.0) -> Event:
        """Park the channel (``uuid_park``); returns its ``CHANNEL_PARK`` event.

        A channel already parked (an outbound session's socket application in
        async mode parks, so does ``originate ... &park()``) returns the
        ``CHANNEL_PARK`` that parked it at once: FreeSWITCH would refuse to
        park it twice.
        """
        span = tracing.channel_park(
            self.uuid, state=self.state.freeswitch_name, connection=self._connection
        )

        def parked(event: Event) -> bool:
            return event.name == "CHANNEL_PARK"

        with self._operation(span, "park", timeout):
            await self._ensure_events()
            self._check_alive()
            if self._status.park_event is not None:
                return self._status.park_event
            subscription = self._watch(lambda event: parked(event) or is_hangup(event))
            try:
                await self._api_on_channel(f"uuid_park {self.uuid}")
                result = await self._await_match(subscription, parked, what="the park")
            finally:
                subscription.close()
            assert result is not None
            return result

    @property
    def parked(self) -> bool:
        """In park (``CHANNEL_PARK`` seen, no ``CHANNEL_UNPARK`` since)."""
        return self._status.park_event is not None

    async def set_variable(self, name: str, value: str | None) -> None:
        """Set (or with None, unset) a channel variable (``uuid_setvar``).

        The value is stored exactly (quotes, backslashes, spaces at both ends,
        line breaks included); ``""``, a value starting with ``ARRAY::`` and NUL
        bytes raise :class:`LocalProtocolError` (see ``docs/security.md``).
        """
        encoding.variable_name(name)
        command = f"uuid_setvar {self.uuid} {name}"
        if value is not None:
            command = f"{command} {encoding.setvar_value(value)}"
        await self._api_on_channel(command)

    async def get_variable(self, name: str) -> str | None:
        """A channel variable's current value (``uuid_getvar``); None when unset.

        (FreeSWITCH answers ``_undef_`` for an unset variable, so a variable
        holding that very text also reads as None.)
        """
        encoding.variable_name(name)
        # uuid_getvar writes the value with no newline of its own: keep it whole.
        value = await self._api_on_channel(f"uuid_getvar {self.uuid} {name}")
        return None if value == "_undef_" else value
