"""A channel's life as a call: created, ringing, early media, answered, hung up.

The far end of an originated leg follows its :class:`~genesis_trio.testing.Destination`;
a loopback pair's legs pass the ring, the answer and the hangup to each other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

import anyio

from ._causes import parse_cause
from ._channel_core import CHANNEL_STATE_NUMBERS, HostT
from ._channel_headers import ChannelHeaders
from ._event_factory import new_uuid

__all__ = ["ChannelLifecycle"]


class ChannelLifecycle(ChannelHeaders[HostT], ABC):
    """Creation, the far end's transitions and the hangup."""

    @abstractmethod
    def _end_bridge(self) -> None:
        """End the bridge this channel is in, if any (bridging is a layer above)."""

    # ----------------------------------------------------------------- creation

    def start(self) -> None:
        """Fire the creation events (synchronously, as the originate creates the leg)."""
        request = self._request
        self.state = "CS_NONE"
        renamed = "origination_uuid" in request.variables
        old_uuid = new_uuid() if renamed else self.uuid
        if self.loopback_leg is not None:
            # mod_loopback sets the codecs while the leg still has its first name and uuid.
            self._fire_codec_events(old_uuid, f"{request.dial_path}-a")
        self._state_number = CHANNEL_STATE_NUMBERS["CS_INIT"]
        if renamed:
            self.emit("CHANNEL_UUID", before=[("Old-Unique-ID", old_uuid)])
        for name, value in request.variables.items():
            self.variables[name] = value
        # mod_loopback's legs always offer early media to the originate.
        early = self.destination.early_media or self.loopback_leg is not None
        self.variables["originate_early_media"] = "true" if early else "false"
        self.variables["originate_endpoint"] = self.endpoint
        self._set_loopback_variables()
        if self.endpoint in ("sofia", "user"):
            # A SIP leg carries its Call-ID; a loopback leg (as recorded) has none.
            self.variables["sip_call_id"] = f"{new_uuid()}@{self._factory.identity.ipv4}"
        self.emit("CHANNEL_OUTGOING", variables=False)
        self._set_running_state("CS_INIT")
        self._state_number = CHANNEL_STATE_NUMBERS["CS_ROUTING"]
        if self.destination.create_late:
            self._create_pending = True
        else:
            self._fire_create()
        self._set_running_state("CS_ROUTING")
        self._set_running_state("CS_CONSUME_MEDIA")

    def _fire_create(self) -> None:
        self._create_pending = False
        self.emit("CHANNEL_CREATE")
        self.emit("CHANNEL_ORIGINATE")

    def _flush_late_create(self) -> None:
        if self._create_pending:
            self._fire_create()

    def link_loopback(self, peer: Self) -> None:
        """Pair this leg with the other leg of its loopback call (before it starts)."""
        self.loopback_peer = peer

    def _set_loopback_variables(self) -> None:
        if self.loopback_peer is not None:
            self.variables["other_loopback_leg_uuid"] = self.loopback_peer.uuid
            self.variables["loopback_leg"] = self.loopback_leg or "A"

    def start_incoming(self) -> None:
        """Fire the events of a call arriving from the outside, routed to the dialplan."""
        for name, value in self._request.variables.items():
            self.variables[name] = value
        self._set_loopback_variables()
        if self.loopback_leg is None:
            self.variables["sip_call_id"] = f"{new_uuid()}@{self._factory.identity.ipv4}"
        else:
            self._fire_codec_events(self.uuid, self.name)
        self._hit_dialplan = True
        self._set_running_state("CS_INIT")
        # The state machine is already routing when CREATE and the ring are fired.
        self._state_number = CHANNEL_STATE_NUMBERS["CS_ROUTING"]
        self.emit("CHANNEL_CREATE")
        self.state = "CS_ROUTING"
        self._set_call_state("RINGING")
        self._set_running_state("CS_ROUTING")
        self._originated.set()

    # ------------------------------------------------------ far-end transitions

    def _ring(self) -> None:
        self._progress_us = self._factory.clock.now_us()
        self.emit("CHANNEL_PROGRESS")
        if self.call_state != "RINGING":
            self._set_call_state("RINGING")

    def _a_leg_peer(self) -> Self | None:
        """The originated leg, when this is the -b leg of a loopback pair."""
        peer = self.loopback_peer
        return peer if self.loopback_leg == "B" and peer is not None else None

    def mark_ring_ready(self) -> None:
        if self._progress_us or self.answered or self.hangup_cause:
            return
        # mod_loopback passes the ring to the originated leg before this leg's event.
        a_leg = self._a_leg_peer()
        if a_leg is not None:
            a_leg.mark_ring_ready()
        self._ring()

    def mark_pre_answered(self) -> None:
        if self.answered or self._answer_state == "early" or self.hangup_cause:
            return
        a_leg = self._a_leg_peer()
        if a_leg is not None:
            a_leg.mark_pre_answered()
        self._progress_media_us = self._factory.clock.now_us()
        if not self._progress_us:
            self._progress_us = self._progress_media_us
        self._answer_state = "early"
        self.variables["endpoint_disposition"] = "EARLY MEDIA"
        self.emit("CHANNEL_PROGRESS_MEDIA")
        self._flush_late_create()
        self._set_call_state("EARLY")
        self._originate_succeeded()

    def mark_answered(self) -> None:
        if self.answered or self.hangup_cause:
            return
        a_leg = self._a_leg_peer()
        if a_leg is not None:
            a_leg.mark_answered()
        self.answered = True
        self._answered_us = self._factory.clock.now_us()
        self._answer_state = "answered"
        self.emit("CHANNEL_ANSWER")
        self.variables["endpoint_disposition"] = "ANSWER"
        self._flush_late_create()
        self._set_call_state("ACTIVE")
        self._answered_event.set()
        self._originate_succeeded()

    def _originate_succeeded(self) -> None:
        if self._originated.is_set():
            return
        # The originate completes: the caller ID flips to the callee (CALL_UPDATE),
        # and originate_function moves the leg to CS_EXECUTE before it replies.
        self._cid_flipped = True
        self._hit_dialplan = True
        if self.loopback_leg is not None:
            if self._caller_name:
                self.variables["pre_transfer_caller_id_name"] = self._caller_name
            self.variables["pre_transfer_caller_id_number"] = self._caller_number
        self.variables["channel_cid_flipped"] = "yes"
        self.emit("CALL_UPDATE", before=[("Direction", "RECV")])
        self._set_running_state("CS_EXECUTE")
        self._originated.set()

    async def _far_end(self) -> None:
        destination = self.destination
        if self.direction == "inbound":
            # The caller already called; all it can still do is hang up.
            if destination.hangup_after is not None:
                await anyio.sleep(destination.hangup_after)
                self.request_hangup("NORMAL_CLEARING")
            return
        timeout = self._request.timeout
        if self.loopback_leg == "A":
            # The -b leg answers (or not) for this one; only the originate timeout is ours.
            with anyio.move_on_after(timeout):
                await self._originated.wait()
            if not self._originated.is_set():
                self.request_hangup("NO_ANSWER")
            return
        delay = destination.answer_after
        if destination.reject_cause is not None:
            if delay:
                self._ring()
                await anyio.sleep(delay)
            self.request_hangup(destination.reject_cause)
            return
        if delay != 0 or destination.early_media:
            self._ring()
        if destination.early_media:
            self.mark_pre_answered()
        if delay is None or (delay > timeout and not destination.early_media):
            if destination.early_media:
                await anyio.sleep_forever()
            await anyio.sleep(timeout)
            self.request_hangup("NO_ANSWER")
            return
        await anyio.sleep(delay)
        self.mark_answered()
        if destination.hangup_after is not None:
            await anyio.sleep(destination.hangup_after)
            self.request_hangup("NORMAL_CLEARING")

    # ------------------------------------------------------------------- hangup

    def request_hangup(self, cause: str = "NORMAL_CLEARING") -> bool:
        """Hang up with ``cause``; ``False`` if the channel is already hanging up.

        ``CHANNEL_HANGUP`` fires at once, as switch_channel_hangup fires it in
        the caller's thread; the rest of the teardown follows in the channel's task.
        A bridged partner sees its bridge end and hangs up too, as recorded.
        """
        if self.hangup_cause is not None:
            return False
        self._flush_late_create()
        self.hangup_cause = parse_cause(cause)
        self._hangup_us = self._factory.clock.now_us()
        self._state_number = CHANNEL_STATE_NUMBERS["CS_HANGUP"]
        self._answer_state = "hangup"
        self.emit("CHANNEL_HANGUP")
        self._hung_up.set()
        if not self._originated.is_set():
            self.originate_error = self.hangup_cause
            self._originated.set()
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        partner = self._bridge_partner
        if partner is not None:
            self._end_bridge()
            partner.request_hangup("NORMAL_CLEARING")
        if self.loopback_peer is not None:
            # Either leg of a loopback pair takes the other down with its own cause.
            self.loopback_peer.request_hangup(self.hangup_cause)
        self._wake_waiters()
        return True

    def _wake_waiters(self) -> None:
        for event in (self._queue_changed, self._dtmf_changed, self._session_wakeup):
            event.set()
        self._notify_apps()

    def hold(self) -> None:
        """An outbound socket controls the session: CHANNEL_DESTROY waits for it."""
        self._holders += 1
        self._released = anyio.Event()

    def release(self) -> None:
        self._holders = max(0, self._holders - 1)
        if not self._holders:
            self._released.set()
