"""One round of a ring group: some destinations ring at once and the first answer wins.

Every mode is made of races: parallel is one race of all destinations,
sequential and balancing are races of one destination each. A race owns one
task group with a task per leg and one for its deadline; whatever ends it
(an answer, the deadline, an error, a cancellation from outside) leaves no
leg ringing on the switch.

Losing legs are hung up with the causes FreeSWITCH's own multi-leg
``originate`` uses, so phones and CDRs tell the same story as a native ring
group: ``LOSE_RACE`` once another leg answered (sofia then sends ``Reason:
SIP;cause=200;text="Call completed elsewhere"``, so phones log no missed
call), ``NO_ANSWER`` when the deadline passed, and ``ORIGINATOR_CANCEL`` when
the ring was cancelled or failed. A leg still being set up when the race is
decided is hung up by ``Channel.create``'s cancellation path, with the same
cause.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc

from .._exceptions import ConnectionLost, GenesisError, OriginateError
from ..channel import Channel
from ..channel._state import is_hangup
from ._balancers import LoadBalancerBackend

if TYPE_CHECKING:
    from .._client import ESLClient
    from ..protocol import Event

__all__ = [
    "LEG_TAG_VARIABLE",
    "LOSE_RACE",
    "NO_ANSWER",
    "ORIGINATOR_CANCEL",
    "SWITCH_TIMEOUT_VARIABLE",
    "Race",
    "RingState",
]

LOSE_RACE: Final = "LOSE_RACE"
NO_ANSWER: Final = "NO_ANSWER"
ORIGINATOR_CANCEL: Final = "ORIGINATOR_CANCEL"

#: The switch-side deadline of every leg: FreeSWITCH ends the ringing by itself
#: when it passes, even if our process died (``leg_timeout`` works too; this one
#: is the originate's own and the fake honours it as well).
SWITCH_TIMEOUT_VARIABLE: Final = "originate_timeout"

#: Set on every leg's originate: its ``CHANNEL_CREATE`` tells us the leg's uuid
#: (``Channel.create`` only hands the channel over once it answered).
LEG_TAG_VARIABLE: Final = "genesis_ring_group_leg"

logger = logging.getLogger("genesis_trio.group")

# The events of a new leg that repeat its originate variables.
_LEG_EVENTS: Final = ("CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA")


@dataclass
class RingState:
    """What one ``RingGroup.ring`` call shares with its races."""

    client: ESLClient
    variables: Mapping[str, object]
    balancer: LoadBalancerBackend | None
    cleanup_timeout: float
    #: The leg that won, from the moment it won (hung up if the ring fails after that).
    answered: Channel | None = None


@dataclass(eq=False)
class _Leg:
    dial_path: str
    tag: str = field(default_factory=lambda: uuid_module.uuid4().hex)
    uuid: str | None = None
    finished: bool = False


class Race:
    """Ring ``destinations`` at once until ``deadline``; :meth:`run` returns the winner or None."""

    def __init__(self, state: RingState, destinations: Sequence[str], deadline: float) -> None:
        self._state = state
        self._legs = [_Leg(destination) for destination in destinations]
        self._by_tag = {leg.tag: leg for leg in self._legs}
        self._deadline = deadline
        self._ringing = len(self._legs)
        # The first of answer / deadline / error decides, and names the cause
        # every other leg is hung up with.
        self._decided: str | None = None
        self._error: Exception | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    async def run(self) -> Channel | None:
        """Returns the answered channel, or None when no leg answered before the deadline.

        A leg that fails to originate (busy, rejected, unregistered, ...) just
        drops out of the race. Any other error ends the race and is raised
        (once, not wrapped in a group) after every leg was hung up.
        """
        connection = self._state.client.connection
        tap = connection.subscribe(_LEG_EVENTS, matches=self._learn_uuid)
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                for leg in self._legs:
                    task_group.start_soon(self._ring_leg, leg, name=f"ring {leg.dial_path}")
                task_group.start_soon(self._expire, name="ring deadline")
        finally:
            tap.close()
        if self._error is not None:
            raise self._error
        return self._state.answered if self._decided == LOSE_RACE else None

    # --- legs ---------------------------------------------------------------------
    def _learn_uuid(self, event: Event) -> bool:
        # Called by the connection's reader, synchronously: records, never buffers.
        tag = event.get(f"variable_{LEG_TAG_VARIABLE}")
        leg = self._by_tag.get(tag) if tag is not None else None
        if leg is not None and leg.uuid is None:
            leg.uuid = event.unique_id
        return False

    async def _ring_leg(self, leg: _Leg) -> None:
        try:
            async with self._counted(leg.dial_path):
                await self._originate(leg)
        except OriginateError as failed:
            logger.debug("ring group: %s did not answer (%s)", leg.dial_path, failed.cause)
        except Exception as exc:  # Cancelled is a BaseException: it passes untouched
            self._fail(exc)
        finally:
            leg.finished = True
            self._ringing -= 1
            if self._ringing == 0:
                self._cancel()  # every leg is done: stop waiting for the deadline

    async def _originate(self, leg: _Leg) -> None:
        state = self._state
        variables = {**state.variables, LEG_TAG_VARIABLE: leg.tag}
        switch_deadline = self._switch_deadline(state.variables)
        if switch_deadline is not None:
            variables[SWITCH_TIMEOUT_VARIABLE] = switch_deadline
        channel = await Channel.create(
            state.client,
            leg.dial_path,
            variables,
            cleanup_timeout=state.cleanup_timeout,
            # A leg still being set up when the race is decided (its CHANNEL_CREATE not
            # seen yet) is hung up by Channel.create itself: with the race's cause.
            cancel_cause=self._abandon_cause,
        )
        leg.uuid = channel.uuid
        if self._decide(LOSE_RACE):
            state.answered = channel
            await self._hang_up_ringing(LOSE_RACE, sparing=leg)
            await self._hand_over_count(leg.dial_path, channel)
            self._cancel()
        else:
            # It answered just after another leg, or after the deadline.
            assert self._decided is not None
            await hang_up_quietly(channel, self._decided, state.cleanup_timeout)

    def _switch_deadline(self, variables: Mapping[str, object]) -> int | None:
        """The ring's remaining time for the switch's own originate timer, in whole seconds.

        We end the ringing ourselves at the deadline; this is for when we
        cannot: our process killed, the connection gone. The originate runs
        in a FreeSWITCH job thread that outlives the connection, and ends the
        leg itself once ``originate_timeout`` passes. Rounded up (the switch
        counts whole seconds) so it never ends a leg before we would; a
        shorter ``originate_timeout`` given by the caller stays.
        """
        remaining = self._deadline - anyio.current_time()
        if not math.isfinite(remaining):
            return None
        seconds = max(1, math.ceil(remaining))
        given = variables.get(SWITCH_TIMEOUT_VARIABLE)
        if given is not None:
            with contextlib.suppress(ValueError):  # not a number: ours replaces it
                seconds = min(seconds, int(str(given)))
        return seconds

    def _counted(self, dial_path: str) -> AbstractAsyncContextManager[object]:
        balancer = self._state.balancer
        return nullcontext() if balancer is None else balancer.track(dial_path)

    async def _hand_over_count(self, dial_path: str, channel: Channel) -> None:
        """Keep counting the answered leg after the race, until its call ends.

        The connection that carries the channel owns the task holding the
        count, so the count comes back down on hangup, on connection loss, or
        when the connection's owner ends. It counts before this leg stops
        counting, so the count never dips to zero in between.
        """
        balancer = self._state.balancer
        if balancer is None:
            return
        counted = anyio.Event()
        self._state.client.connection.start_soon(
            hold_count_until_hangup, balancer, dial_path, channel, counted, name="ring count"
        )
        await counted.wait()

    def _abandon_cause(self) -> str:
        return self._decided or ORIGINATOR_CANCEL

    def _decide(self, cause: str) -> bool:
        if self._decided is not None:
            return False
        self._decided = cause
        return True

    def _fail(self, exc: Exception) -> None:
        if self._decide(ORIGINATOR_CANCEL):
            self._error = exc
            self._cancel()
        else:
            logger.debug("ring group: a leg failed after the race was decided: %r", exc)

    def _cancel(self) -> None:
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    async def _expire(self) -> None:
        await anyio.sleep_until(self._deadline)
        if self._decide(NO_ANSWER):
            await self._hang_up_ringing(NO_ANSWER)
            self._cancel()

    # --- hanging up ------------------------------------------------------------------
    async def _hang_up_ringing(self, cause: str, *, sparing: _Leg | None = None) -> None:
        """Hang up every leg still ringing, concurrently (shielded, own deadline).

        A leg whose uuid is not known yet (its ``CHANNEL_CREATE`` has not
        arrived) is left to ``Channel.create``'s cancellation path, which
        waits for the leg to exist and hangs it up.
        """
        uuids = [
            leg.uuid
            for leg in self._legs
            if leg is not sparing and not leg.finished and leg.uuid is not None
        ]
        if not uuids:
            return
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + self._state.cleanup_timeout
            async with anyio.create_task_group() as task_group:
                for uuid in uuids:
                    task_group.start_soon(self._kill, uuid, cause)
        if scope.cancelled_caught:
            logger.warning("ring group: hanging up the losing legs took too long")

    async def _kill(self, uuid: str, cause: str) -> None:
        try:
            # "-ERR No such channel" is fine: the leg ended on its own meanwhile.
            await self._state.client.api(f"uuid_kill {uuid} {cause}", check=False)
        except GenesisError as exc:
            logger.debug("ring group: could not hang up %s: %s", uuid, exc)


async def hang_up_quietly(channel: Channel, cause: str, cleanup_timeout: float) -> None:
    """Hang up a leg we will not hand out, even during a cancellation (shielded, own deadline)."""
    with anyio.CancelScope(shield=True):
        try:
            await channel.hangup(cause, timeout=cleanup_timeout)
        except (GenesisError, TimeoutError) as exc:
            logger.warning("ring group: could not hang up %s: %s", channel.uuid, exc)


async def hold_count_until_hangup(
    balancer: LoadBalancerBackend, key: str, channel: Channel, counted: anyio.Event
) -> None:
    """Count one call on ``key`` for as long as ``channel`` lives."""
    try:
        async with balancer.track(key):
            counted.set()
            await _wait_for_hangup(channel)
    except ConnectionLost:
        pass  # the call is over as far as we can know; the count is already down
    except Exception:
        logger.exception("ring group: counting the call on %r failed", key)
    finally:
        counted.set()


async def _wait_for_hangup(channel: Channel) -> None:
    # A plain subscription rather than channel.wait(): no span that would
    # outlive the ring_group.ring span it would be parented on.
    subscription = channel.client.connection.subscribe(uuid=channel.uuid, matches=is_hangup)
    try:
        # Subscribed before looking, so a hangup cannot slip in between.
        if not channel.hung_up:
            await subscription.receive()
    finally:
        subscription.close()
