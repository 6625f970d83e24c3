"""Simulated channels: :class:`FakeChannel`, the top of the channel model's layers.

A :class:`FakeChannel` is either the A leg an ``originate`` creates (its far
end scripted by a :class:`~genesis_trio.testing.Destination`), a leg of a loopback
pair, or an incoming call routed to an outbound socket
(:meth:`FakeFreeSWITCH.call_socket`). The order of events and the headers each
carries follow the recorded legs of ``inbound_plain_lifecycle`` and
``outbound_session_plain``. This layer adds bridging (``uuid_bridge``) and binds
the applications of ``_apps`` to the channel; ``_channel_core`` describes the
layers below.
"""

from __future__ import annotations

from typing import Protocol, Self

from ._apps import APPLICATIONS
from ._channel_core import CHANNEL_STATE_NUMBERS, ApplicationRun, BoundApplication, ChannelHost
from ._channel_session import ChannelSession
from ._event_factory import local_stamp

__all__ = ["ApplicationRun", "FakeChannel", "SwitchHost"]


class SwitchHost(ChannelHost, Protocol):
    """The switch around a channel, with the ``socket`` application it runs."""

    async def run_socket_application(self, channel: FakeChannel, data: str) -> str: ...


class FakeChannel(ChannelSession[SwitchHost]):
    """One simulated channel.

    Read-only to users, except :attr:`variables` (what ``uuid_setvar`` changes).
    ``state`` is the ``Channel-State`` (``CS_*``), ``call_state`` the
    ``Channel-Call-State``; ``hangup_cause`` is set once the channel hangs up.
    :attr:`applications` lists what ran, :attr:`breaks` each ``uuid_break``
    (True for ``all``), :attr:`dtmf_sent` the digits sent to the far end.
    """

    def _find_application(self, name: str) -> BoundApplication | None:
        if name == "socket":
            # mod_event_socket's application: the switch opens the connection.
            return BoundApplication(lambda data: self._host.run_socket_application(self, data))
        app = APPLICATIONS.get(name)
        if app is None:
            return None
        run = app.run
        return BoundApplication(lambda data: run(self, data), app.interrupted_response)

    # ----------------------------------------------------------------- bridging

    async def bridge_with(self, other: Self) -> None:
        """``uuid_bridge self other``: both leave park, then this (A) leg fires CHANNEL_BRIDGE."""
        legs = (self, other)
        for leg, peer, a_side in ((self, other, True), (other, self, False)):
            leg._bridging = True
            leg._transfer(peer, a_side)
        try:
            await self.leave_park()
            await other.leave_park()
        finally:
            for leg in legs:
                leg._bridging = False
                leg._session_wakeup.set()
        if self.hangup_cause is not None or other.hangup_cause is not None:
            return
        for leg, peer, a_side in ((self, other, True), (other, self, False)):
            # The transfer's states: hibernate, reset, then soft-execute the bridge.
            leg._set_running_state("CS_HIBERNATE")
            leg._set_running_state("CS_RESET")
            leg._other_leg = peer
            leg._bridge_a_side = a_side
            leg._set_running_state("CS_SOFT_EXECUTE")
            leg.variables["bridge_uuid"] = peer.uuid
            leg.variables["bridge_channel"] = peer.name
            leg.emit(
                "CHANNEL_EXECUTE",
                after=[("Application", "uuid_bridge"), ("Application-Data", peer.uuid)],
                site="UUID_BRIDGE_EXECUTE",
            )
        self._bridge_partner = other
        other._bridge_partner = self
        stamp = local_stamp(self._factory.clock.now_us())
        for leg, peer in legs, (other, self):
            leg.variables["last_bridge_to"] = peer.uuid
            leg.variables["signal_bond"] = peer.uuid
            leg.variables["bridge_stamp"] = stamp
        # The B side runs the media loop; the A side bridges from its soft-execute.
        other._set_running_state("CS_CONSUME_MEDIA")
        other._set_running_state("CS_EXCHANGE_MEDIA")
        self.emit(
            "CHANNEL_BRIDGE",
            before=[("Bridge-A-Unique-ID", self.uuid), ("Bridge-B-Unique-ID", other.uuid)],
            site="BRIDGE",
        )

    def _transfer(self, peer: Self, a_side: bool) -> None:
        """uuid_bridge first transfers the leg: a new caller profile (its index, the
        transfer source), the B side's dialplan hit forgotten, the original caller ID kept;
        the park notices it in CS_HIBERNATE."""
        shown_name, shown_number = self._shown_caller_id()
        self.variables["original_destination_number"] = self.destination_number
        if shown_name:
            self.variables["original_caller_id_name"] = shown_name
        self.variables["original_caller_id_number"] = shown_number
        epoch = self._factory.clock.now_us() // 1_000_000
        source = f"{epoch}:{self.uuid}:uuid_br:{peer.uuid}"
        self._transfer_source = source
        self.variables["transfer_source"] = source
        self.variables["transfer_history"] = source
        self._profile_index += 1
        # The A side's new profile is an inbound one; each side knows the other from now on.
        if a_side:
            self._logical_direction = "inbound"
        self._other_leg = peer
        self._bridge_a_side = a_side
        if not a_side:
            self._hit_dialplan = False
        self._state_number = CHANNEL_STATE_NUMBERS["CS_HIBERNATE"]

    def _end_bridge(self) -> None:
        partner = self._bridge_partner
        if partner is None:
            return
        a_leg, b_leg = (self, partner) if self._bridge_a_side else (partner, self)
        self._bridge_partner = None
        partner._bridge_partner = None
        if b_leg.hangup_cause is not None:
            a_leg.variables["bridge_hangup_cause"] = b_leg.hangup_cause
            a_leg.variables["last_bridge_hangup_cause"] = b_leg.hangup_cause
        # What each side last sent the other as callee ID (a number stands in for a name).
        a_leg.variables["last_sent_callee_id_name"] = b_leg._caller_name or b_leg._caller_number
        a_leg.variables["last_sent_callee_id_number"] = b_leg._caller_number
        name, number = a_leg._shown_caller_id()
        b_leg.variables["last_sent_callee_id_name"] = name or number
        b_leg.variables["last_sent_callee_id_number"] = number
        b_leg.variables["last_bridge_role"] = "originatee"
        a_leg.emit(
            "CHANNEL_UNBRIDGE",
            before=[("Bridge-A-Unique-ID", a_leg.uuid), ("Bridge-B-Unique-ID", b_leg.uuid)],
            site="BRIDGE",
        )
        if a_leg.hangup_cause is None:
            # The A side's bridge returns: back to executing (before its own hangup).
            a_leg._set_running_state("CS_EXECUTE")
        for leg in (self, partner):
            leg._session_wakeup.set()
