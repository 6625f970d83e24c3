"""Running dialplan applications: ``execute``, which most operations are built on.

A blocking application is followed by its ``Event-UUID`` from the write to
its ``CHANNEL_EXECUTE_COMPLETE``; cancelled on the way, it is stopped on the
switch (``uuid_break``) without touching any other application.
"""

# The API gives every blocking operation a ``timeout=``: it becomes the
# deadline of the operation's own cancel scope (see _outcome.py), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

import uuid as uuid_module
from typing import Literal, TypedDict, Unpack, overload

import anyio
import anyio.lowlevel

from .. import tracing
from .._exceptions import CommandStage, GenesisError
from .._subscription import Subscription
from .._util import logger
from ..protocol import Event
from ..protocol import _encoding as encoding
from ._core import ChannelCore, checked_word
from ._state import is_hangup

__all__ = ["Applications"]


class _ExecuteOptions(TypedDict, total=False):
    """The optional headers of a ``call-command: execute`` (see :meth:`Channel.execute`)."""

    event_lock: bool
    asynchronous: bool
    loops: int | None
    expand: bool


class _Progress:
    """Where one executed application is, as the reader saw its events (in their order)."""

    __slots__ = ("finished", "started")

    def __init__(self) -> None:
        self.started = False
        self.finished = False

    def saw(self, name: str | None) -> None:
        if name == "CHANNEL_EXECUTE":
            self.started = True
        elif name == "CHANNEL_EXECUTE_COMPLETE":
            self.started = self.finished = True


class Applications(ChannelCore):
    """Executing applications: the blocking and the fire-and-forget ``execute``."""

    # --- executing applications ------------------------------------------------------
    @staticmethod
    def _execute_headers(
        application: str,
        arg: str | None,
        event_uuid: str | None,
        *,
        event_lock: bool = False,
        asynchronous: bool = False,
        loops: int | None = None,
        expand: bool = False,
    ) -> tuple[str, list[tuple[str, str]], str | None]:
        """The execute's Event-UUID (a new one unless given), its sendmsg headers and body."""
        event_uuid = event_uuid or str(uuid_module.uuid4())
        checked_word(application, "application")
        arg_headers, body = encoding.app_arg_headers(arg, expand=expand)
        headers = [("call-command", "execute"), ("execute-app-name", application), *arg_headers]
        if loops is not None:
            headers.append(("loops", str(int(loops))))
        if event_lock:
            headers.append(("event-lock", "true"))
        if asynchronous:
            headers.append(("async", "true"))
        headers.append(("Event-UUID", event_uuid))
        return event_uuid, headers, body

    async def _send_application(
        self,
        application: str,
        arg: str | None,
        event_uuid: str | None = None,
        **options: Unpack[_ExecuteOptions],
    ) -> str:
        event_uuid, headers, body = self._execute_headers(application, arg, event_uuid, **options)
        with tracing.session_sendmsg(
            self.uuid,
            application=application,
            application_uuid=event_uuid,
            block=False,
            connection=self._connection,
        ):
            self._check_alive()
            await self._sendmsg(headers, body)
        return event_uuid

    async def _run_application(
        self,
        application: str,
        arg: str | None,
        event_uuid: str | None = None,
        **options: Unpack[_ExecuteOptions],
    ) -> Event:
        """Execute and wait for the CHANNEL_EXECUTE_COMPLETE carrying our Event-UUID."""
        event_uuid, headers, body = self._execute_headers(application, arg, event_uuid, **options)
        hangup_is_result = application == "hangup"
        with tracing.session_sendmsg(
            self.uuid,
            application=application,
            application_uuid=event_uuid,
            block=True,
            connection=self._connection,
        ):
            await self._ensure_events()
            if not hangup_is_result:
                self._check_alive()

            def ours(event: Event) -> bool:
                return event.application_uuid == event_uuid

            def complete(event: Event) -> bool:
                return ours(event) and event.name == "CHANNEL_EXECUTE_COMPLETE"

            # What the switch said of our application so far, kept by the reader in event order.
            progress = _Progress()

            def relevant(event: Event) -> bool:
                if ours(event):
                    progress.saw(event.name)
                    return True
                return is_hangup(event)

            # Subscribed before the command is written: the completion cannot slip past.
            subscription = self._watch(relevant)
            try:
                # Cancelled already: nothing was sent, so there is nothing to stop.
                await anyio.lowlevel.checkpoint_if_cancelled()
                try:
                    await self._sendmsg(headers, body)
                    with tracing.session_await_complete(
                        self.uuid, event_uuid, connection=self._connection
                    ):
                        result = await self._await_match(
                            subscription,
                            complete,
                            what=f"{application} to complete",
                            hangup_is_result=hangup_is_result,
                            stage=CommandStage.ACCEPTED,
                        )
                except anyio.get_cancelled_exc_class():
                    await self._stop_application(application, event_uuid, progress)
                    raise
            finally:
                subscription.close()
        if result is None:
            raise self._hangup_error()
        return result

    async def _stop_application(
        self, application: str, event_uuid: str, progress: _Progress
    ) -> None:
        """Stop an application whose wait was cancelled, and nothing else.

        ``uuid_break`` is not aimed at one application: it sets the channel's
        break flag, which stops whatever media application runs when the
        switch reads it. FreeSWITCH clears that flag when the next
        application starts (``switch_core_session_exec``; verified on the real
        switch: a break that finds nothing running never cuts the next
        prompt), so the only way to hurt another application is to break while
        that other one runs. Hence:

        - ours already completed (its CHANNEL_EXECUTE_COMPLETE was read, even
          if its waiter never saw it) or the channel hung up: nothing is sent;
        - ours is running (its CHANNEL_EXECUTE was read): ``uuid_break`` now,
          shielded with ``cleanup_timeout``, so it reaches the switch before
          any later command of the caller;
        - ours has not started (queued behind another application): we wait
          up to half of ``cleanup_timeout`` for it to start, then leave a
          watcher owned by the connection that breaks it the moment it starts.
          Never ``uuid_break all``: that would stop the application running
          now (not ours) and flush what others queued.
        """
        if self._status.hung_up or not self._connection.is_open or progress.finished:
            return

        def mine(event: Event) -> bool:
            if event.application_uuid == event_uuid:
                progress.saw(event.name)  # also once the operation's own subscription is gone
                return True
            return is_hangup(event)

        watch = self._watch(mine)
        handed_over = False
        try:
            with anyio.CancelScope(shield=True) as scope:
                scope.deadline = anyio.current_time() + self.cleanup_timeout
                try:
                    with anyio.move_on_after(self.cleanup_timeout / 2):
                        while not progress.started and not progress.finished:
                            event = await watch.receive()
                            if is_hangup(event):
                                return
                    if progress.finished:
                        return
                    if not progress.started:
                        self._start_soon(
                            f"stop {application} of {self.uuid}",
                            self._break_when_started,
                            watch,
                            progress,
                        )
                        handed_over = True
                        return
                    await self._client.api(f"uuid_break {self.uuid}", check=False)
                except GenesisError as exc:
                    logger.debug("could not stop %s on %s: %s", application, self.uuid, exc)
            if scope.cancelled_caught:
                logger.warning(
                    "stopping %s on %s took longer than %s s",
                    application,
                    self.uuid,
                    self.cleanup_timeout,
                )
        finally:
            if not handed_over:
                watch.close()

    async def _break_when_started(self, watch: Subscription[Event], progress: _Progress) -> None:
        """Break a cancelled application the moment it starts (it was queued behind another)."""
        try:
            while not progress.started:
                event = await watch.receive()
                if progress.finished or is_hangup(event):
                    return
            if not progress.finished:
                await self._client.api(f"uuid_break {self.uuid}", check=False)
        except (GenesisError, anyio.ClosedResourceError) as exc:
            logger.debug("could not stop a queued application on %s: %s", self.uuid, exc)
        finally:
            watch.close()

    @overload
    async def execute(
        self,
        application: str,
        arg: str | None = None,
        *,
        block: Literal[True] = True,
        timeout: float | None = None,
        event_lock: bool = False,
        asynchronous: bool = False,
        loops: int | None = None,
        event_uuid: str | None = None,
        expand: bool = False,
    ) -> Event: ...
    @overload
    async def execute(
        self,
        application: str,
        arg: str | None = None,
        *,
        block: Literal[False],
        timeout: float | None = None,
        event_lock: bool = False,
        asynchronous: bool = False,
        loops: int | None = None,
        event_uuid: str | None = None,
        expand: bool = False,
    ) -> str: ...
    async def execute(
        self,
        application: str,
        arg: str | None = None,
        *,
        block: bool = True,
        timeout: float | None = None,
        event_lock: bool = False,
        asynchronous: bool = False,
        loops: int | None = None,
        event_uuid: str | None = None,
        expand: bool = False,
    ) -> Event | str:
        """Run a dialplan application on the channel (``sendmsg`` ``call-command: execute``).

        Every execute carries an ``Event-UUID``. Blocking (the default), it
        returns the ``CHANNEL_EXECUTE_COMPLETE`` whose ``Application-UUID`` is
        that uuid; it raises :class:`ChannelHangup` at once if the channel
        hangs up, :class:`ConnectionLost` if the connection goes, and when it
        is cancelled (or its ``timeout`` runs out) it stops the application
        with ``uuid_break`` before the cancellation continues. With
        ``block=False`` it returns the Event-UUID once FreeSWITCH accepted the
        command. ``event_lock`` / ``asynchronous`` / ``loops`` add the
        ``event-lock``, ``async`` and ``loops`` headers.

        FreeSWITCH expands ``${...}`` in application arguments and rewrites
        ``\\\\``, ``\\'`` and ``\\$``: such arguments raise
        :class:`LocalProtocolError` unless ``expand=True`` says you want that
        expansion (never with text from outside). See ``docs/security.md``.
        """
        options: _ExecuteOptions = {
            "event_lock": event_lock,
            "asynchronous": asynchronous,
            "loops": loops,
            "expand": expand,
        }
        with self._operation(None, f"execute {application}", timeout):
            if not block:
                return await self._send_application(application, arg, event_uuid, **options)
            return await self._run_application(application, arg, event_uuid, **options)
