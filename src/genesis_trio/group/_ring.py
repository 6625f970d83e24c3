"""RingGroup: ring several destinations and hand back the one that answers."""

# ``timeout=`` is the ring's own deadline (its races' cancel scopes), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import anyio

from .. import tracing
from .._exceptions import ChannelHangup
from .._session import Session
from ..channel import Channel, ChannelState
from ..protocol import _encoding as encoding
from ._balancers import LoadBalancerBackend
from ._race import ORIGINATOR_CANCEL, Race, RingState, hang_up_quietly

if TYPE_CHECKING:
    from .._client import ESLClient

__all__ = ["RingGroup", "RingMode"]


class RingMode(enum.StrEnum):
    """How a ring group rings its destinations."""

    #: All at once; the first to answer wins.
    PARALLEL = "parallel"
    #: One at a time, in the order given, each with its share of the deadline.
    SEQUENTIAL = "sequential"
    #: One at a time, least loaded first (by the balancer), each with its share.
    BALANCING = "balancing"


class RingGroup:
    """Ring a group of destinations: ``await RingGroup.ring(client, [...])``.

    See :meth:`ring`. The class holds no state; it is the namespace Genesis
    users know.
    """

    @staticmethod
    async def ring(
        client: ESLClient,
        destinations: Sequence[str],
        mode: RingMode | str = RingMode.PARALLEL,
        *,
        timeout: float = 30.0,
        variables: Mapping[str, object] | None = None,
        balancer: LoadBalancerBackend | None = None,
        caller: Channel | None = None,
        cleanup_timeout: float = 2.0,
    ) -> Channel | None:
        """Ring ``destinations`` (dial paths) and return the channel that answered.

        Returns None when nobody answered within ``timeout`` seconds (legs
        that are busy, reject the call or cannot be reached just drop out).
        No leg is left ringing on the switch however the ring ends.

        :param client: an :class:`~genesis_trio.Inbound` client, or an outbound
            session (not in ``myevents`` mode: it would not see the new legs).
        :param mode: :class:`RingMode` (or its value): ``parallel`` rings all
            at once; ``sequential`` rings one at a time in order;
            ``balancing`` rings one at a time, least loaded first.
        :param timeout: seconds for the whole ring. Sequential and balancing
            give each leg an equal share of the time that is left when it
            starts, so time a busy leg did not use goes to the next ones.
        :param variables: originate variables for every leg (``{k=v,...}``).
        :param balancer: counts each leg while it rings and, for the leg that
            answers, until that call hangs up (also on cancellation and
            connection loss). Required for ``balancing``; optional otherwise.
        :param caller: the call being connected; if it hangs up during the
            ring, every leg is hung up and :class:`ChannelHangup` (for the
            caller) is raised. Over a session it defaults to the session's channel.
        :param cleanup_timeout: seconds allowed to hang legs up after an
            answer, a deadline or a cancellation.

        Cancelling the ring (an enclosing ``move_on_after``, a cancelled task
        group) hangs up every leg, the answered one included if it answered
        just before, and the cancellation propagates. Any other error (lost
        connection, failing balancer) hangs up every leg and is raised as
        itself. The ``ring_group.ring`` span records the outcome.
        """
        mode = RingMode(mode)
        order = _checked_destinations(destinations)
        # Refuse variables FreeSWITCH would rewrite before any leg is dialled.
        encoding.originate_variables(variables or {})
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if not (cleanup_timeout > 0 and math.isfinite(cleanup_timeout)):
            raise ValueError(f"cleanup_timeout must be a positive number, not {cleanup_timeout!r}")
        if mode is RingMode.BALANCING and balancer is None:
            raise ValueError("the balancing mode needs a balancer=")
        if caller is None:
            caller = _session_channel(client)
        state = RingState(
            client=client,
            variables=dict(variables or {}),
            balancer=balancer,
            cleanup_timeout=cleanup_timeout,
        )
        span = tracing.ring_group_ring(
            mode=mode.value,
            size=len(order),
            timeout=timeout,
            has_balancer=balancer is not None,
            has_variables=bool(variables),
            balanced=mode is RingMode.BALANCING,
            connection=client.connection,
        )
        abandoned: ChannelHangup | None = None
        with span:
            try:
                answered, abandoned = await _ring_while_caller_waits(
                    state, order, mode, anyio.current_time() + timeout, caller
                )
            except BaseException:
                if state.answered is not None:
                    await hang_up_quietly(state.answered, ORIGINATOR_CANCEL, cleanup_timeout)
                raise
            if abandoned is not None:
                if state.answered is not None:
                    await hang_up_quietly(state.answered, ORIGINATOR_CANCEL, cleanup_timeout)
                # The caller giving up is not a failure of the ring group.
                span.set_result(tracing.RingGroupResult.CANCELLED)
            elif answered is not None:
                span.answered(answered.uuid, answered.dial_path or "")
        if abandoned is not None:
            raise abandoned
        return answered


def _checked_destinations(destinations: Sequence[str]) -> list[str]:
    if isinstance(destinations, str):
        raise TypeError("destinations is a sequence of dial paths, not one string")
    order = list(destinations)
    if not order:
        raise ValueError("a ring group needs at least one destination")
    for destination in order:
        if not isinstance(destination, str):
            raise ValueError(f"a destination is one dial path: {destination!r}")
        # One leg per destination: no separators, no variable blocks (docs/security.md).
        encoding.dial_path(destination)
    return order


def _session_channel(client: ESLClient) -> Channel | None:
    if isinstance(client, Session) and client.connected:
        return client.channel
    return None


async def _ring_while_caller_waits(
    state: RingState,
    order: list[str],
    mode: RingMode,
    deadline: float,
    caller: Channel | None,
) -> tuple[Channel | None, ChannelHangup | None]:
    """Run the mode; with a caller, watch it in the same task group.

    Returns ``(answered, None)``, or ``(None, ChannelHangup)`` when the
    caller hung up first. Errors are raised as themselves, not in a group.
    """
    if caller is None:
        return await _run_mode(state, order, mode, deadline), None
    if caller.hung_up:
        return None, ChannelHangup(caller.uuid, caller.hangup_cause)
    abandoned: ChannelHangup | None = None
    failure: Exception | None = None
    answered: Channel | None = None

    async def watch_caller(scope: anyio.CancelScope) -> None:
        nonlocal abandoned, failure
        try:
            await caller.wait(ChannelState.HANGUP)
        except Exception as exc:  # the caller's connection went away, ...
            failure = exc
        else:
            abandoned = ChannelHangup(caller.uuid, caller.hangup_cause)
        scope.cancel()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(watch_caller, task_group.cancel_scope, name="ring caller watch")
        try:
            answered = await _run_mode(state, order, mode, deadline)
        except Exception as exc:  # raised below as itself, not in the task group's group
            failure = failure or exc
        task_group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if abandoned is not None:
        return None, abandoned
    return answered, None


async def _run_mode(
    state: RingState, order: list[str], mode: RingMode, deadline: float
) -> Channel | None:
    if mode is RingMode.PARALLEL:
        return await Race(state, order, deadline).run()
    remaining = list(order)
    while remaining:
        left = deadline - anyio.current_time()
        if left <= 0:
            break
        share = left / len(remaining)
        if mode is RingMode.BALANCING:
            assert state.balancer is not None
            try:
                destination = await state.balancer.least_loaded(remaining)
            except Exception as exc:
                tracing.record_balancer_pick(state.client.connection, state.balancer, exc)
                raise
            tracing.record_balancer_pick(state.client.connection, state.balancer)
        else:
            destination = remaining[0]
        remaining.remove(destination)
        answered = await Race(state, [destination], anyio.current_time() + share).run()
        if answered is not None:
            return answered
    return None
