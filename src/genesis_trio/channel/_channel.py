"""The public Channel: the operation mixins of this package, assembled.

Each job lives in its own module (see ``__init__.py``); this one only holds
what needs the final type: the constructors that return a ``Channel`` and
``bridge``, whose other leg may be one.
"""

# The API gives every blocking operation a ``timeout=``: it becomes the
# deadline of the operation's own cancel scope (see _outcome.py), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ..protocol import Event
from ._control import CallControl
from ._dtmf import Dtmf
from ._media import Media
from ._originate import Originating, check_followable, check_originate
from ._waits import Waits

if TYPE_CHECKING:
    from .._client import ESLClient

__all__ = ["Channel"]


class Channel(Media, CallControl, Waits, Dtmf, Originating):
    """One FreeSWITCH channel, whichever connection controls it.

    Get one from an outbound session (``session.channel``), for a live uuid
    over an Inbound client (:meth:`from_uuid`), or by originating a call
    (:meth:`create`). Its state (:attr:`state`, :attr:`answered`,
    :attr:`bridged`, :attr:`hung_up`, :attr:`hangup_cause`) is kept current
    by the channel's events and never polled.

    Every blocking operation takes ``timeout=`` (seconds, ``None``: no limit
    of its own) and honours the caller's cancel scopes: see
    ``docs/cancellation.md`` for what happens on timeout, cancellation,
    hangup and connection loss.
    """

    # --- construction -------------------------------------------------------------
    @classmethod
    async def create(
        cls,
        client: ESLClient,
        dial_path: str,
        variables: Mapping[str, object] | None = None,
        *,
        timeout: float | None = None,
        cleanup_timeout: float = 2.0,
        cancel_cause: str | Callable[[], str] = "ORIGINATOR_CANCEL",
    ) -> Channel:
        """Originate a call and return its channel once the callee answers.

        Runs ``bgapi originate {origination_uuid=<new uuid>,...}<dial_path> &park()``;
        the uuid is chosen here so the channel's events are followed from the
        first one. A failed originate raises :class:`OriginateError` whose
        ``cause`` is FreeSWITCH's (``USER_BUSY``, ``NO_ANSWER``,
        ``NO_ROUTE_DESTINATION``, ...). On ``timeout`` (:class:`TimeoutError`)
        or cancellation the leg is hung up with ``cancel_cause``
        (``ORIGINATOR_CANCEL`` unless given) before the exception continues. A
        callable is asked at that moment: a ring group passes its decision, so a
        leg abandoned because another answered ends with ``LOSE_RACE`` even when
        its ``CHANNEL_CREATE`` had not arrived yet.
        """
        check_originate(client, dial_path, variables, cancel_cause)
        channel = cls(
            client, str(uuid_module.uuid4()), dial_path=dial_path, cleanup_timeout=cleanup_timeout
        )
        await channel._run_originate(variables, timeout, cancel_cause)
        return channel

    @classmethod
    async def from_uuid(
        cls, client: ESLClient, uuid: str, *, cleanup_timeout: float = 2.0
    ) -> Channel:
        """Follow and control a live channel by uuid (its current state read with ``uuid_dump``).

        Raises :class:`ChannelNotFound` when FreeSWITCH has no such channel.
        A ``myevents`` session receives only its own call's events: following
        any other channel over it is refused at once with :class:`ChannelError`.
        """
        check_followable(client, uuid)
        channel = cls(client, uuid, cleanup_timeout=cleanup_timeout)
        await channel._follow_existing()
        return channel

    @classmethod
    def _for_session(cls, client: ESLClient, uuid: str, data: Event) -> Channel:
        channel = cls(client, uuid, dial_path=data.get("Channel-Name"), _session_channel=True)
        channel._status.apply_snapshot(data)
        return channel

    # --- call control that names the public type (the rest: _control.py) ---------------
    async def bridge(self, other: Channel | str, *, timeout: float | None = 30.0) -> Event:
        """Bridge this channel to another live channel (``uuid_bridge``).

        Returns the ``CHANNEL_BRIDGE`` event. A hangup of either leg while the
        bridge is being set up raises :class:`ChannelHangup` for that leg.
        """
        return await self._bridge(other, timeout=timeout)
