"""Waiting for a channel to reach a state or to receive an event."""

# The API gives every blocking operation a ``timeout=``: it becomes the
# deadline of the operation's own cancel scope (see _outcome.py), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import Callable

from .. import tracing
from ..protocol import Event
from ._core import ChannelCore, checked_word
from ._state import HANGUP_EVENTS, ChannelState, is_hangup

__all__ = ["Waits"]


class Waits(ChannelCore):
    """``wait``: for a state, an event name or a CUSTOM subclass."""

    async def wait(
        self, target: ChannelState | str, *, timeout: float | None = None
    ) -> Event | None:
        """Wait until the channel reaches a state or an event arrives for it.

        ``target`` is a :class:`ChannelState` (returns the event that brought
        the channel there, or None if it already was) or an event name
        (``"CHANNEL_ANSWER"``, ``"DTMF"``, a CUSTOM subclass, ...). Events
        that happen once in a channel's life (create, progress, answer,
        hangup, ...) that already happened return at once. A hangup raises
        :class:`ChannelHangup` unless the hangup is what you wait for.
        """
        if isinstance(target, ChannelState):
            label, wait_type = target.freeswitch_name, "state"
        else:
            label, wait_type = checked_word(target, "event name"), "event"
        span = tracing.channel_wait(
            self.uuid,
            target=label,
            timeout=timeout,
            wait_type=wait_type,
            connection=self._connection,
        )
        with self._operation(span, f"wait for {label}", timeout):
            return await self._wait_for(target)

    async def _wait_for(self, target: ChannelState | str) -> Event | None:
        status = self._status
        accept: Callable[[Event], bool]
        if isinstance(target, ChannelState):
            await self._ensure_events()
            hangup_is_result = target.ended
            if target.ended:
                if status.state >= target or (target is ChannelState.HANGUP and status.hung_up):
                    return None
                accept = _reaches_end(target)
            else:
                if status.state is target:
                    return None
                wanted = target.freeswitch_name
                accept = lambda event: event.channel_state == wanted  # noqa: E731
        else:
            await self._ensure_events((target,))
            hangup_is_result = target in HANGUP_EVENTS
            seen = status.milestones.get(target)
            if seen is not None:
                return seen
            accept = lambda event: event.name == target or event.subclass == target  # noqa: E731
        if not hangup_is_result:
            self._check_alive()
        subscription = self._watch(lambda event: accept(event) or is_hangup(event))
        try:
            return await self._await_match(
                subscription,
                accept,
                what=str(target.freeswitch_name if isinstance(target, ChannelState) else target),
                hangup_is_result=hangup_is_result,
            )
        finally:
            subscription.close()


def _reaches_end(target: ChannelState) -> Callable[[Event], bool]:
    def reached(event: Event) -> bool:
        if target is ChannelState.HANGUP:
            return is_hangup(event)
        name = event.name
        state = ChannelState.from_freeswitch(event.channel_state or "")
        if target is ChannelState.DESTROY:
            return name == "CHANNEL_DESTROY" or state is ChannelState.DESTROY
        return name in ("CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY") or (
            state is not None and state.ended and state >= target
        )

    return reached
