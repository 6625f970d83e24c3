"""The part of a Channel every operation shares: its state, its taps on the connection, its waits.

Each operation module (``_applications``, ``_control``, ``_media``, ``_waits``,
``_dtmf``, ``_originate``) is a mixin over :class:`ChannelCore`, so it reaches
the channel's status, the connection and the helpers below with their types
checked; ``_channel.py`` assembles the public :class:`~genesis_trio.Channel`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import tracing
from .._exceptions import (
    ChannelHangup,
    ChannelNotFound,
    CommandError,
    CommandStage,
    ConnectionLost,
    LocalProtocolError,
)
from .._outcome import Outcome, OutcomeScope
from .._subscription import Subscription
from ..protocol import CommandReply, Event
from ._state import ChannelState, ChannelStatus, is_hangup

if TYPE_CHECKING:
    from .._client import ESLClient

__all__ = ["CHANNEL_EVENTS", "ChannelCore"]

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
CAUSE = re.compile(r"[A-Z][A-Z0-9_]*")
_MISSING = ("No such channel", "No Such Channel", "invalid session id", "Cannot locate session")


def checked_uuid(value: str) -> str:
    if not isinstance(value, str) or _UUID.fullmatch(value) is None:
        raise LocalProtocolError(f"invalid channel uuid {value!r}")
    return value


def checked_word(value: str, what: str) -> str:
    if _WORD.fullmatch(value) is None:
        raise LocalProtocolError(f"{what} must be one word without spaces: {value!r}")
    return value


def is_missing(reply: str) -> bool:
    return any(marker in reply for marker in _MISSING)


class ChannelCore:
    """One FreeSWITCH channel's state and plumbing, without its operations."""

    def __init__(
        self,
        client: ESLClient,
        uuid: str,
        *,
        dial_path: str | None = None,
        cleanup_timeout: float = 2.0,
        _session_channel: bool = False,
    ) -> None:
        self.uuid = checked_uuid(uuid)
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
        if event.name == "CHANNEL_DESTROY":
            # At once, from the reader: the routes unregister copy-on-write, so the
            # lists it is iterating keep their other routes (a hangup waiter after this
            # tap still gets the event), and no task is started per call.
            self._release()
        return False

    def _on_peer_bridge(self, event: Event) -> bool:
        if event.get("Bridge-B-Unique-ID") == self.uuid:
            self._status.apply_peer_bridge(event)
        return False

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

    # --- failing at once -----------------------------------------------------------------
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

    def _operation(
        self, span: tracing.OperationSpan | None, name: str, timeout: float | None
    ) -> AbstractContextManager[OutcomeScope]:
        """The one wrapper every channel operation runs in: its span and its OutcomeScope.

        Operations the tracing spec gives no span of their own pass ``None``;
        they are still traced by their ``session.sendmsg`` span. With no span
        (nothing records, see ``tracing.channel_*``) the OutcomeScope alone.
        """
        if span is None:
            return OutcomeScope(name, timeout=timeout)
        return _TracedOperation(span, name, timeout)

    # --- commands aimed at this channel ---------------------------------------------------
    async def _sendmsg(
        self, headers: list[tuple[str, str]], body: str | None = None
    ) -> CommandReply:
        target = None if self._session_channel else self.uuid
        try:
            return await self._client.sendmsg(headers, uuid=target, body=body)
        except CommandError as exc:
            if is_missing(exc.reply):
                self._check_alive()
                raise ChannelNotFound(self.uuid) from None
            raise
        except ConnectionLost:
            self._check_alive()
            raise

    async def _api_on_channel(self, command: str) -> str:
        self._check_alive()
        try:
            return await self._client.api(command)
        except CommandError as exc:
            if is_missing(exc.reply):
                self._check_alive()
                self._status.mark_gone()
                raise ChannelNotFound(self.uuid) from None
            raise


class _TracedOperation:
    """An operation with a span: ``with span, OutcomeScope(...)``, the span recording how
    the scope ended (a class: a generator context manager costs every operation more)."""

    __slots__ = ("_scope", "_span")

    def __init__(self, span: tracing.OperationSpan, name: str, timeout: float | None) -> None:
        self._span = span
        self._scope = OutcomeScope(name, timeout=timeout, on_outcome=self._record)

    def _record(self, outcome: Outcome) -> None:
        span = self._span
        span.set(tracing.names.WAIT_RESULT, outcome.value)
        if isinstance(span, tracing.WaitSpan):
            span.set_result(tracing.WaitResult(outcome.value))

    def __enter__(self) -> OutcomeScope:
        self._span.__enter__()
        try:
            return self._scope.__enter__()
        except BaseException as exc:
            self._span.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._scope.__exit__(exc_type, exc, tb)
        except BaseException as raised:
            # What a ``with span, scope:`` does: the span sees what left the scope.
            self._span.__exit__(type(raised), raised, raised.__traceback__)
            raise
        self._span.__exit__(exc_type, exc, tb)
