"""How a Channel comes to be: originating a call, or following a live one by uuid.

``Channel.create`` (in ``_channel.py``) checks what it is given, then runs
:meth:`Originating._run_originate`: the ``bgapi originate`` and, when the
caller leaves early, the hangup of a leg that may not even exist yet.
"""

# The API gives every blocking operation a ``timeout=``: it becomes the
# deadline of the operation's own cancel scope (see _outcome.py), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import anyio

from .. import tracing
from .._exceptions import (
    ChannelError,
    ChannelNotFound,
    CommandError,
    GenesisError,
    LocalProtocolError,
    OriginateError,
    RemoteProtocolError,
)
from .._util import logger
from ..protocol import _encoding as encoding
from ..protocol import decode_event
from ._core import CAUSE, ChannelCore, is_missing

if TYPE_CHECKING:
    from .._client import ESLClient

__all__ = ["Originating", "check_followable", "check_originate"]


def check_originate(
    client: ESLClient,
    dial_path: str,
    variables: Mapping[str, object] | None,
    cancel_cause: str | Callable[[], str],
) -> None:
    """Refuse an originate before anything is sent (docs/security.md)."""
    if not callable(cancel_cause) and CAUSE.fullmatch(cancel_cause) is None:
        raise LocalProtocolError(f"invalid hangup cause {cancel_cause!r}")
    # The client says so itself (an outbound Session): the channel layer never imports Session.
    if client._myevents:
        raise ChannelError(
            "a myevents session only receives its own channel's events (no BACKGROUND_JOB, "
            "nothing of a new leg): originate over an Inbound connection"
        )
    # Refuse what FreeSWITCH would rewrite.
    encoding.originate_argument(variables or {}, dial_path)


def check_followable(client: ESLClient, uuid: str) -> None:
    """A ``myevents`` session receives only its own call's events: refuse any other uuid."""
    if client._myevents and uuid != client._own_call_uuid():
        raise ChannelError(
            "a myevents session only receives its own channel's events: "
            f"follow {uuid!r} over an Inbound connection"
        )


class Originating(ChannelCore):
    """The work behind ``Channel.create`` and ``Channel.from_uuid``."""

    async def _run_originate(
        self,
        variables: Mapping[str, object] | None,
        timeout: float | None,
        cancel_cause: str | Callable[[], str],
    ) -> None:
        assert self.dial_path is not None
        span = tracing.channel_create(
            self.dial_path,
            has_variables=bool(variables),
            channel_uuid=self.uuid,
            connection=self._connection,
        )
        try:
            with self._operation(span, "originate", timeout):
                await self._originate(dict(variables or {}), span.trace_variables(), cancel_cause)
        except BaseException:
            self._release()
            raise

    async def _originate(
        self,
        variables: dict[str, object],
        trace: Mapping[str, str],
        cancel_cause: str | Callable[[], str],
    ) -> None:
        await self._ensure_events()
        merged: dict[str, object] = {**trace, **variables, "origination_uuid": self.uuid}
        assert self.dial_path is not None
        command = f"originate {encoding.originate_argument(merged, self.dial_path)} &park()"
        try:
            job = await self._client.bgapi_event(command)
        except anyio.get_cancelled_exc_class():
            cause = cancel_cause() if callable(cancel_cause) else cancel_cause
            if CAUSE.fullmatch(cause) is None:
                cause = "ORIGINATOR_CANCEL"  # the leg must go whatever the callable said
            await self._abandon_originate(cause)
            raise
        body = (job.body or "").strip()
        if not body.startswith("+OK"):
            cause = body.removeprefix("-ERR").strip().split()[0] if body else "UNKNOWN"
            raise OriginateError(f"originate {self.dial_path}", body, cause or "UNKNOWN")
        created = body.removeprefix("+OK").strip()
        if created != self.uuid:
            await self._hang_up_stranger(created)
            raise RemoteProtocolError(
                f"originate {self.dial_path} created channel {created!r}, not the "
                f"origination_uuid {self.uuid} it asked for; that leg was hung up"
            )

    async def _hang_up_stranger(self, created: str) -> None:
        # A leg we did not ask for (our origination_uuid was lost on the way):
        # hang it up, and ours too should it exist after all.
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + self.cleanup_timeout
            for uuid in (created, self.uuid):
                if not uuid or uuid.split() != [uuid]:
                    continue
                try:
                    await self._client.api(f"uuid_kill {uuid} ORIGINATOR_CANCEL", check=False)
                except GenesisError as exc:
                    logger.warning("could not hang up unexpected leg %s: %s", uuid, exc)

    async def _abandon_originate(self, cause: str) -> None:
        # The leg may not exist yet when we are cancelled: kill it as soon as it does.
        created = self._watch(lambda event: event.name == "CHANNEL_CREATE")
        try:
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = anyio.current_time() + self.cleanup_timeout
                kill = f"uuid_kill {self.uuid} {cause}"
                reply = await self._client.api(kill, check=False)
                if reply.startswith("-ERR") and "CHANNEL_CREATE" not in self._status.milestones:
                    await created.receive()
                    await self._client.api(kill, check=False)
        except GenesisError as exc:
            logger.debug("could not hang up abandoned originate %s: %s", self.uuid, exc)
        finally:
            created.close()

    async def _follow_existing(self) -> None:
        """Start from the live channel's ``uuid_dump``; events seen meanwhile stay newer."""
        try:
            await self._ensure_events()
            body = await self._client.api(f"uuid_dump {self.uuid} json", check=False)
            if body.startswith(("-ERR", "-USAGE")):
                if is_missing(body):
                    raise ChannelNotFound(self.uuid)
                raise CommandError(f"uuid_dump {self.uuid}", body.strip())
            self._status.apply_snapshot(decode_event(body.encode("utf-8"), "json"))
        except BaseException:
            self._release()
            raise
