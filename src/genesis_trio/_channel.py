"""Channel: one FreeSWITCH channel, controlled over an outbound Session or an Inbound client.

State comes from the channel's events, applied by the connection's reader in
the order FreeSWITCH sent them. Every blocking operation runs inside an
:class:`~genesis_trio._outcome.OutcomeScope` (its own ``timeout=`` and the
caller's cancellation reach it the same way), fails at once with
:class:`ChannelHangup` when the channel hangs up and with
:class:`ConnectionLost` when the connection goes, and stops what it started on
the switch when it is cancelled.
"""

# The API gives every blocking operation a ``timeout=``: it becomes the
# deadline of the operation's own cancel scope (see _outcome.py), not a sleep.
# ruff: noqa: ASYNC109

from __future__ import annotations

import re
import uuid as uuid_module
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, Unpack, overload

import anyio
import anyio.lowlevel

from . import tracing
from ._channel_state import HANGUP_EVENTS, ChannelState, ChannelStatus, is_hangup
from ._exceptions import (
    ChannelError,
    ChannelHangup,
    ChannelNotFound,
    CommandError,
    CommandStage,
    ConnectionLost,
    GenesisError,
    LocalProtocolError,
    OriginateError,
    RemoteProtocolError,
)
from ._outcome import Outcome, OutcomeScope
from ._subscription import Subscription
from ._util import logger
from .protocol import CommandReply, Event, decode_event
from .protocol import _encoding as encoding

if TYPE_CHECKING:
    from ._client import ESLClient

__all__ = ["CHANNEL_EVENTS", "Channel", "DtmfHandler"]

DtmfHandler = Callable[[str], Awaitable[object]]
_H = TypeVar("_H", bound=DtmfHandler)

# What a channel needs FreeSWITCH to send to follow its life and its operations
# (all of them are in myevents' list; ``wait`` asks for any other event it needs).
CHANNEL_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_STATE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "DTMF",
)

_UUID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.:@-]{0,127}")
_WORD = re.compile(r"[^\s]+")
_CAUSE = re.compile(r"[A-Z][A-Z0-9_]*")
_DTMF_DIGITS = re.compile(r"[0-9A-Da-d*#wW]+")
_DTMF_DIGIT = re.compile(r"[0-9A-Da-d*#]")
_MISSING = ("No such channel", "No Such Channel", "invalid session id", "Cannot locate session")


class _ExecuteOptions(TypedDict, total=False):
    """The optional headers of a ``call-command: execute`` (see :meth:`Channel.execute`)."""

    event_lock: bool
    asynchronous: bool
    loops: int | None
    expand: bool


def _checked_uuid(value: str) -> str:
    if not isinstance(value, str) or _UUID.fullmatch(value) is None:
        raise LocalProtocolError(f"invalid channel uuid {value!r}")
    return value


def _checked_word(value: str, what: str) -> str:
    if _WORD.fullmatch(value) is None:
        raise LocalProtocolError(f"{what} must be one word without spaces: {value!r}")
    return value


def _is_missing(reply: str) -> bool:
    return any(marker in reply for marker in _MISSING)


def _milliseconds(seconds: float) -> str:
    return str(max(0, round(seconds * 1000)))


class Channel:
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

    def __init__(
        self,
        client: ESLClient,
        uuid: str,
        *,
        dial_path: str | None = None,
        cleanup_timeout: float = 2.0,
        _session_channel: bool = False,
    ) -> None:
        self.uuid = _checked_uuid(uuid)
        self.dial_path = dial_path
        self.cleanup_timeout = cleanup_timeout
        self._client = client
        self._connection = client.connection
        self._status = ChannelStatus(self.uuid)
        # An outbound session's own channel takes sendmsg without a uuid, as
        # FreeSWITCH's examples and our captures do.
        self._session_channel = _session_channel
        self._events_ready = False
        self._released = False
        # While the connection has FreeSWITCH-side filters, this one lets our events through.
        self._filters = client._filters
        self._filters.hold("Unique-ID", self.uuid)
        self._dtmf_subscriptions: list[Subscription[Event]] = []
        # The reader calls ``matches`` synchronously, in event order: a tap that
        # never buffers keeps the state current before any waiter wakes up.
        self._taps = [
            self._connection.subscribe(uuid=self.uuid, matches=self._on_own_event),
            self._connection.subscribe(
                ("CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE"), matches=self._on_peer_bridge
            ),
        ]

    def __repr__(self) -> str:
        return (
            f"<Channel {self.uuid} {self._status.state.name}{' hung up' if self.hung_up else ''}>"
        )

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
        if not callable(cancel_cause) and _CAUSE.fullmatch(cancel_cause) is None:
            raise LocalProtocolError(f"invalid hangup cause {cancel_cause!r}")
        from ._session import Session

        if isinstance(client, Session) and client.myevents_enabled:
            raise ChannelError(
                "a myevents session only receives its own channel's events (no BACKGROUND_JOB, "
                "nothing of a new leg): originate over an Inbound connection"
            )
        # Refuse what FreeSWITCH would rewrite before anything is sent (docs/security.md).
        encoding.originate_argument(variables or {}, dial_path)
        channel = cls(client, str(uuid_module.uuid4()), dial_path=dial_path)
        span = tracing.channel_create(
            dial_path,
            has_variables=bool(variables),
            channel_uuid=channel.uuid,
            connection=client.connection,
        )
        try:
            with channel._operation(span, "originate", timeout):
                await channel._originate(
                    dict(variables or {}), span.trace_variables(), cancel_cause
                )
        except BaseException:
            channel._release()
            raise
        return channel

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
            if _CAUSE.fullmatch(cause) is None:
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

    @classmethod
    async def from_uuid(
        cls, client: ESLClient, uuid: str, *, cleanup_timeout: float = 2.0
    ) -> Channel:
        """Follow and control a live channel by uuid (its current state read with ``uuid_dump``).

        Raises :class:`ChannelNotFound` when FreeSWITCH has no such channel.
        A ``myevents`` session receives only its own call's events: following
        any other channel over it is refused at once with :class:`ChannelError`.
        """
        from ._session import Session

        if isinstance(client, Session) and client.myevents_enabled:
            own = client.uuid if client.connected else None
            if uuid != own:
                raise ChannelError(
                    "a myevents session only receives its own channel's events: "
                    f"follow {uuid!r} over an Inbound connection"
                )
        channel = cls(client, uuid, cleanup_timeout=cleanup_timeout)
        try:
            await channel._ensure_events()
            body = await client.api(f"uuid_dump {channel.uuid} json", check=False)
            if body.startswith(("-ERR", "-USAGE")):
                if _is_missing(body):
                    raise ChannelNotFound(channel.uuid)
                raise CommandError(f"uuid_dump {channel.uuid}", body.strip())
            channel._status.apply_snapshot(decode_event(body.encode("utf-8"), "json"))
        except BaseException:
            channel._release()
            raise
        return channel

    @classmethod
    def _for_session(cls, client: ESLClient, uuid: str, data: Event) -> Channel:
        channel = cls(client, uuid, dial_path=data.get("Channel-Name"), _session_channel=True)
        channel._status.apply_snapshot(data)
        return channel

    # --- state ----------------------------------------------------------------------
    @property
    def state(self) -> ChannelState:
        return self._status.state

    @property
    def call_state(self) -> str | None:
        """``Channel-Call-State`` (``RINGING``, ``EARLY``, ``ACTIVE``, ``HANGUP``, ...)."""
        return self._status.call_state

    @property
    def answer_state(self) -> str | None:
        """``Answer-State`` (``ringing``, ``early``, ``answered``, ``hangup``)."""
        return self._status.answer_state

    @property
    def answered(self) -> bool:
        return self._status.answered

    @property
    def bridged(self) -> bool:
        return self._status.bridged_to is not None

    @property
    def bridged_to(self) -> str | None:
        """The uuid of the leg this channel is bridged to, if any."""
        return self._status.bridged_to

    @property
    def hung_up(self) -> bool:
        return self._status.hung_up

    @property
    def hangup_cause(self) -> str | None:
        return self._status.hangup_cause

    @property
    def hangup_cause_q850(self) -> int | None:
        return self._status.hangup_cause_q850

    @property
    def data(self) -> Mapping[str, str]:
        """The latest value of every header the channel's events carried."""
        return self._status.data

    @property
    def client(self) -> ESLClient:
        return self._client

    # --- event plumbing ----------------------------------------------------------------
    def _on_own_event(self, event: Event) -> bool:
        status = self._status
        was_hung_up = status.hung_up
        status.apply(event)
        if status.hung_up and not was_hung_up:
            # No DTMF follows a hangup: let the handler workers drain and stop.
            for subscription in self._dtmf_subscriptions:
                subscription.end()
        if event.name == "CHANNEL_DESTROY" and not self._released:
            # The reader is iterating the route lists right now: unregister later.
            self._connection.start_soon(self._release_after_destroy, name="channel-release")
        return False

    def _on_peer_bridge(self, event: Event) -> bool:
        if event.get("Bridge-B-Unique-ID") == self.uuid:
            self._status.apply_peer_bridge(event)
        return False

    async def _release_after_destroy(self) -> None:
        self._release()

    def _release(self) -> None:
        """Stop following this channel (idempotent); its filter, if any, goes soon after."""
        if self._released:
            return
        self._released = True
        self._filters.release("Unique-ID", self.uuid)
        for tap in self._taps:
            tap.close()
        for subscription in self._dtmf_subscriptions:
            subscription.end()

    async def _ensure_events(self, extra: Iterable[str] = ()) -> None:
        names = [name for name in extra if name not in CHANNEL_EVENTS]
        if self._events_ready and not names:
            await self._filters.ensure("Unique-ID", self.uuid)
            return
        await self._client._ensure_switch_events([*CHANNEL_EVENTS, *names])
        self._events_ready = True
        # With FreeSWITCH-side filters in place, our events only pass if a filter lets them.
        await self._filters.ensure("Unique-ID", self.uuid)

    def _watch(
        self, matches: Callable[[Event], bool], keys: Iterable[str] | None = None
    ) -> Subscription[Event]:
        """Register interest before the command that causes the event is written."""
        if keys is None:
            return self._connection.subscribe(uuid=self.uuid, matches=matches)
        return self._connection.subscribe(keys, matches=matches)

    def _hangup_error(self, event: Event | None = None) -> ChannelHangup:
        if event is not None and event.unique_id not in (None, self.uuid):
            return ChannelHangup(event.unique_id or self.uuid, event.hangup_cause)
        return ChannelHangup(self.uuid, self._status.hangup_cause)

    def _check_alive(self) -> None:
        if self._status.hung_up:
            raise self._hangup_error()

    async def _await_match(
        self,
        subscription: Subscription[Event],
        accept: Callable[[Event], bool],
        *,
        what: str,
        hangup_is_result: bool = False,
        stage: CommandStage | None = None,
    ) -> Event | None:
        """The first event ``accept`` takes; a hangup first raises ChannelHangup.

        With ``hangup_is_result`` a hangup is what we wait for: the hangup
        event is returned, or None when only the closing socket said so.
        """
        while True:
            try:
                event = await subscription.receive()
            except ConnectionLost as exc:
                if self._status.hung_up:
                    if hangup_is_result:
                        return None
                    raise self._hangup_error() from None
                raise ConnectionLost(f"while waiting for {what}: {exc}", stage=stage) from None
            if accept(event):
                return event
            if is_hangup(event) and not hangup_is_result:
                raise self._hangup_error(event)

    @contextmanager
    def _operation(
        self, span: tracing.OperationSpan | None, name: str, timeout: float | None
    ) -> Iterator[OutcomeScope]:
        """The one wrapper every channel operation runs in: its span and its OutcomeScope.

        Operations the tracing spec gives no span of their own pass ``None``;
        they are still traced by their ``session.sendmsg`` span.
        """

        def record(outcome: Outcome) -> None:
            if span is None:
                return
            span.set(tracing.names.WAIT_RESULT, outcome.value)
            if isinstance(span, tracing.WaitSpan):
                span.set_result(tracing.WaitResult(outcome.value))

        with (
            span if span is not None else nullcontext(),
            OutcomeScope(name, timeout=timeout, on_outcome=record) as scope,
        ):
            yield scope

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
        _checked_word(application, "application")
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

    async def _sendmsg(
        self, headers: list[tuple[str, str]], body: str | None = None
    ) -> CommandReply:
        target = None if self._session_channel else self.uuid
        try:
            return await self._client.sendmsg(headers, uuid=target, body=body)
        except CommandError as exc:
            if _is_missing(exc.reply):
                self._check_alive()
                raise ChannelNotFound(self.uuid) from None
            raise
        except ConnectionLost:
            self._check_alive()
            raise

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

    # --- operations -------------------------------------------------------------------
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
        if _CAUSE.fullmatch(cause) is None:
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
                        if _is_missing(reply):
                            self._status.mark_gone()
                            return None
                        raise CommandError(f"uuid_kill {self.uuid}", reply.strip())
                return await self._await_match(
                    subscription, is_hangup, what="the hangup", hangup_is_result=True
                )
            finally:
                subscription.close()

    async def bridge(self, other: Channel | str, *, timeout: float | None = 30.0) -> Event:
        """Bridge this channel to another live channel (``uuid_bridge``).

        Returns the ``CHANNEL_BRIDGE`` event. A hangup of either leg while the
        bridge is being set up raises :class:`ChannelHangup` for that leg.
        """
        other_uuid = _checked_uuid(other.uuid if isinstance(other, Channel) else other)
        span = tracing.channel_bridge(
            self.uuid, other_uuid, state=self.state.freeswitch_name, connection=self._connection
        )
        legs = (self.uuid, other_uuid)
        with self._operation(span, "bridge", timeout):
            await self._ensure_events()
            self._check_alive()
            if isinstance(other, Channel):
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

    @overload
    async def playback(
        self, path: str, *, block: Literal[True] = True, timeout: float | None = None
    ) -> Event: ...
    @overload
    async def playback(
        self, path: str, *, block: Literal[False], timeout: float | None = None
    ) -> str: ...
    async def playback(
        self, path: str, *, block: bool = True, timeout: float | None = None
    ) -> Event | str:
        """Play a file or stream; blocking, returns the completion (see :meth:`execute`).

        Leaving early (``timeout``, an enclosing ``move_on_after``, a
        cancelled task group) stops the playback on the switch.
        """
        span = tracing.channel_playback(self.uuid, path, block=block, connection=self._connection)
        with self._operation(span, "playback", timeout):
            if not block:
                return await self._send_application("playback", path)
            return await self._run_application("playback", path)

    async def say(
        self,
        text: str,
        *,
        module: str = "en",
        kind: str = "NUMBER",
        method: str = "pronounced",
        gender: str | None = None,
        timeout: float | None = None,
    ) -> Event:
        """Say a number, date, ... with the ``say`` application and its sound files."""
        # say splits its argument on spaces (switch_separate_string): each word
        # is encoded for that, the text included (docs/security.md).
        words = [
            encoding.app_word(value, what)
            for value, what in ((module, "module"), (kind, "kind"), (method, "method"))
        ]
        if gender is not None:
            words.append(encoding.app_word(gender, "gender"))
        words.append(encoding.app_word(text, "say text"))
        span = tracing.channel_say(
            self.uuid, module=module, kind=kind, method=method, connection=self._connection
        )
        with self._operation(span, "say", timeout):
            return await self._run_application("say", " ".join(words))

    async def play_and_get_digits(
        self,
        file: str,
        *,
        min_digits: int = 1,
        max_digits: int = 1,
        tries: int = 3,
        input_timeout: float = 5.0,
        terminators: str = "#",
        invalid_file: str = "silence_stream://250",
        variable: str = "pagd_digits",
        regexp: str = r"\d+",
        digit_timeout: float | None = None,
        timeout: float | None = None,
    ) -> str:
        """Play ``file`` and collect digits; returns them (``""`` when none were valid).

        ``input_timeout`` / ``digit_timeout`` are FreeSWITCH's waits for the
        first and the next digit (seconds); ``timeout`` bounds the whole
        operation. The caller hanging up raises :class:`ChannelHangup` at once.
        """
        if not 0 <= min_digits <= max_digits or tries < 1:
            raise ValueError("need 0 <= min_digits <= max_digits and tries >= 1")
        encoding.variable_name(variable)
        arguments = " ".join(
            [
                str(min_digits),
                str(max_digits),
                str(tries),
                _milliseconds(input_timeout),
                encoding.app_word(terminators or "none", "terminators"),
                encoding.app_word(file, "file"),
                encoding.app_word(invalid_file, "invalid_file"),
                variable,
                encoding.app_word(regexp, "regexp"),
                _milliseconds(input_timeout if digit_timeout is None else digit_timeout),
            ]
        )
        span = tracing.channel_play_and_get_digits(
            self.uuid, file, tries=tries, connection=self._connection
        )
        with self._operation(span, "play_and_get_digits", timeout):
            completion = await self._run_application("play_and_get_digits", arguments)
            digits = completion.get(f"variable_{variable}")
            if digits is None:
                digits = await self.get_variable(variable)
            return digits or ""

    @overload
    async def record(
        self,
        path: str,
        *,
        time_limit: int | None = None,
        silence_threshold: int | None = None,
        silence_hits: int | None = None,
        block: Literal[True] = True,
        timeout: float | None = None,
    ) -> Event: ...
    @overload
    async def record(
        self,
        path: str,
        *,
        time_limit: int | None = None,
        silence_threshold: int | None = None,
        silence_hits: int | None = None,
        block: Literal[False],
        timeout: float | None = None,
    ) -> str: ...
    async def record(
        self,
        path: str,
        *,
        time_limit: int | None = None,
        silence_threshold: int | None = None,
        silence_hits: int | None = None,
        block: bool = True,
        timeout: float | None = None,
    ) -> Event | str:
        """Record the caller to ``path`` on the FreeSWITCH host (the ``record`` application).

        It ends at ``time_limit`` seconds, after ``silence_hits`` of silence
        below ``silence_threshold``, on a terminator digit, or when stopped;
        cancelling it stops the recording (``uuid_break``).
        """
        words = [encoding.app_word(path, "path")]
        if time_limit is not None or silence_threshold is not None:
            words.append(str(int(time_limit or 0)))
        if silence_threshold is not None:
            words.append(str(int(silence_threshold)))
            if silence_hits is not None:
                words.append(str(int(silence_hits)))
        with self._operation(None, "record", timeout):
            if not block:
                return await self._send_application("record", " ".join(words))
            return await self._run_application("record", " ".join(words))

    async def send_dtmf(self, digits: str, *, duration_ms: int | None = None) -> None:
        """Send DTMF to the channel (``uuid_send_dtmf``); ``w``/``W`` pause 0.5 s / 1 s."""
        if _DTMF_DIGITS.fullmatch(digits) is None:
            raise LocalProtocolError(f"invalid DTMF digits {digits!r}")
        suffix = "" if duration_ms is None else f"@{int(duration_ms)}"
        await self._api_on_channel(f"uuid_send_dtmf {self.uuid} {digits}{suffix}")

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

    async def _api_on_channel(self, command: str) -> str:
        self._check_alive()
        try:
            return await self._client.api(command)
        except CommandError as exc:
            if _is_missing(exc.reply):
                self._check_alive()
                self._status.mark_gone()
                raise ChannelNotFound(self.uuid) from None
            raise

    # --- waiting -----------------------------------------------------------------------
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
            label, wait_type = _checked_word(target, "event name"), "event"
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

    # --- DTMF --------------------------------------------------------------------------
    def on_dtmf(self, digit: str | None = None) -> Callable[[_H], _H]:
        """Decorator: run ``await handler(digit)`` for each DTMF digit (or only ``digit``).

        Each call runs in its own task, owned by the connection that carries
        the channel (an outbound session's task group, or the Inbound
        client's); a handler that raises is logged. Handlers stop after the
        channel hangs up.
        """
        if digit is not None and _DTMF_DIGIT.fullmatch(digit) is None:
            raise LocalProtocolError(f"invalid DTMF digit {digit!r}")

        def register(handler: _H) -> _H:
            self.add_dtmf_handler(handler, digit=digit)
            return handler

        return register

    def add_dtmf_handler(self, handler: DtmfHandler, *, digit: str | None = None) -> None:
        """The non-decorator form of :meth:`on_dtmf`."""
        if self._status.hung_up or self._released:
            return

        def wanted(event: Event) -> bool:
            return event.name == "DTMF" and (digit is None or event.get("DTMF-Digit") == digit)

        subscription = self._connection.subscribe(uuid=self.uuid, matches=wanted, max_buffer=1000)
        self._dtmf_subscriptions.append(subscription)
        self._start_soon(f"dtmf handler of {self.uuid}", self._dtmf_worker, subscription, handler)

    def _start_soon(
        self, name: str, func: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        """Run the library's own work for this channel in a task the caller does not own.

        An outbound session owns its call's background work (it ends with the
        call); an Inbound client's connection owns it otherwise (it ends when
        the client's block is left). Never the caller's task group: the work
        outlives the call that started it, and must not keep it open.
        """
        start = getattr(self._client, "start_soon", None) or self._connection.start_soon
        start(func, *args, name=name)

    async def _dtmf_worker(self, subscription: Subscription[Event], handler: DtmfHandler) -> None:
        try:
            async with anyio.create_task_group() as calls:
                while True:
                    try:
                        event = await subscription.receive()
                    except (ConnectionLost, anyio.ClosedResourceError):
                        break
                    except GenesisError as exc:
                        logger.error("DTMF handler of %s stopped: %s", self.uuid, exc)
                        break
                    pressed = event.get("DTMF-Digit")
                    if pressed:
                        calls.start_soon(self._call_dtmf_handler, handler, pressed)
        finally:
            subscription.close()
            if subscription in self._dtmf_subscriptions:
                self._dtmf_subscriptions.remove(subscription)

    async def _call_dtmf_handler(self, handler: DtmfHandler, digit: str) -> None:
        try:
            with tracing.channel_dtmf_received(self.uuid, digit, connection=self._connection):
                await handler(digit)
        except Exception:
            logger.exception("DTMF handler %r failed on channel %s", handler, self.uuid)


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
