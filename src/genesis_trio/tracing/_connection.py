"""Per-connection telemetry: ``send_command`` and ``process_event`` spans, lifecycle hooks.

Created once when a connection starts, and only when something would record
(an SDK tracer or meter provider): an unobserved connection carries
``telemetry = None`` and pays one attribute check per command and nothing per
event (no hook is registered at all).
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from inspect import isawaitable
from typing import TYPE_CHECKING, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Status, StatusCode

from .._exceptions import ConnectionLost
from .._outcome import is_cancellation
from .._util import logger
from ..protocol import ApiResponse, CommandReply, Event
from . import _names as n
from ._attributes import event_attributes, span_attribute_limit
from ._correlation import CallTraces
from ._custom import CUSTOM_SUBCLASSES, TRANSFER_SUBCLASSES, CustomProcessor, transfer_kind
from ._lifecycle import LIFECYCLE_EVENTS, LifecycleProcessor
from ._metrics import Instruments, instruments_for
from ._providers import get_tracer, tracer_records
from ._tally import TallyKey

if TYPE_CHECKING:
    from .._stream import ConnectionDepths, EventHandler, Reply, SendCommand

__all__ = ["ConnectionTelemetry", "env_enabled"]

_OFF: Final = frozenset({"0", "false", "no", "off"})
_API_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_REPLY_LIMIT: Final = 200


def env_enabled(variable: str) -> bool:
    """Processors are on unless the variable says 0 (read at call time, not import)."""
    return os.environ.get(variable, "1").strip().lower() not in _OFF


def command_name(label: str) -> str:
    """The command verb only: arguments can carry secrets (auth) or caller data."""
    return label.split(" ", 1)[0] or "unknown"


class ConnectionTelemetry:
    """What one ESL connection records. Build it with :meth:`create`."""

    def __init__(
        self,
        kind: str,
        *,
        tracer: trace.Tracer | None,
        instruments: Instruments | None,
        lifecycle: bool,
        custom: bool,
        base_context: Context | None = None,
    ) -> None:
        self.kind = kind
        self.tracer = tracer
        self.instruments = instruments
        self.lifecycle_enabled = lifecycle
        self.custom_enabled = custom
        self._base = base_context if base_context is not None else otel_context.get_current()
        # Per-event counters: plain dict bumps, reported when a reader collects.
        self._tally = instruments.tally_for(self) if instruments is not None else None
        self._lifecycle = (
            LifecycleProcessor(tracer, instruments, self._tally) if lifecycle else None
        )
        self._custom = CustomProcessor(tracer) if custom and tracer is not None else None
        self._calls = CallTraces()
        self._open = False
        self._depths: ConnectionDepths | None = None
        # Only an authenticated connection can be "lost": before that a failure is the
        # connect attempt's (counted once, by inbound_connect).
        self._authenticated = False
        self._attribute_limit: int | None = None
        # Whether the last process_event span recorded (a guess for the next one).
        self._recording = True

    @classmethod
    def create(
        cls,
        kind: str,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> ConnectionTelemetry | None:
        """Telemetry for a connection starting now, or None when nothing would record.

        Reads the providers (the global ones when not given) and the two
        environment switches at this moment, so a later SDK set-up or env
        change applies to the next connection.
        """
        tracer: trace.Tracer | None = get_tracer(tracer_provider)
        if tracer is not None and not tracer_records(tracer):
            tracer = None
        instruments = instruments_for(meter_provider)
        if tracer is None and instruments is None:
            return None
        return cls(
            kind,
            tracer=tracer,
            instruments=instruments,
            lifecycle=env_enabled(n.ENV_LIFECYCLE),
            custom=env_enabled(n.ENV_CUSTOM),
        )

    # --- the connection's observer (genesis_trio._stream.ConnectionObserver) -------------
    def connection_opened(self, depths: ConnectionDepths) -> None:
        if self.instruments is not None and not self._open:
            self._open = True
            self._authenticated = False  # a reconnecting client reuses its telemetry
            self._depths = depths
            self.instruments.connections_active.add(1, {"type": self.kind})
            self.instruments.connection_opened(depths, self.kind)

    def connection_closed(self, *, clean: bool = True) -> None:
        """The connection ended; ``clean=False``: it was lost, not closed by us."""
        if self.instruments is not None and self._open:
            self._open = False
            self.instruments.connections_active.add(-1, {"type": self.kind})
            if self._depths is not None:
                self.instruments.connection_closed(self._depths)
                self._depths = None
            # An outbound socket ends when FreeSWITCH is done with the call: that is normal.
            if not clean and self.kind == "inbound" and self._authenticated:
                self.instruments.connections_errors.add(
                    1, {"type": self.kind, "error": "connection_lost"}
                )

    def event_routed(self, event: Event, seconds: float) -> None:
        """How long the reader spent on ``event`` (hooks and routing)."""
        if self.instruments is not None:
            name = event.get("Event-Name") or "UNKNOWN"
            self.instruments.event_processing_duration.record(seconds, {n.EVENT_NAME: name})

    def bind_call(self, call_uuid: str, context: Context | None = None) -> None:
        """Parent this call's event spans on ``context`` (default: the current one).

        For an outbound session the call is the reason the connection exists:
        binding it puts the channel's lifecycle under ``outbound_handle_connection``.
        """
        parent = context if context is not None else otel_context.get_current()
        if trace.get_current_span(parent).get_span_context().is_valid:
            self._calls.bind(call_uuid, parent)

    def handler_context(self, event: Event) -> AbstractContextManager[object]:
        """Make the event's call trace current while a handler runs for it.

        Spans a handler starts then join that call's trace; for an event that
        belongs to no call, the context the connection was opened in.
        """
        if self.tracer is None:
            return nullcontext()
        return _attached(self._handler_parent(event))

    def _handler_parent(self, event: Event) -> Context:
        call_key = event.get("Channel-Call-UUID") or event.get("Unique-ID")
        parent = self._calls.parent(call_key, event) if call_key is not None else None
        return parent if parent is not None else self._base

    def wrap_handler(self, handler: EventHandler) -> EventHandler:
        """``handler`` running under :meth:`handler_context` of each event it gets,
        counted and timed (``genesis.consumer.handlers``, ``.handler.duration``)."""
        instruments = self.instruments
        tally = self._tally
        parent_of = self._handler_parent
        attach, detach = otel_context.attach, otel_context.detach
        if instruments is None or tally is None:
            if self.tracer is None:
                return handler

            # Per event: one parent lookup and one attach/detach pair, no context manager.
            async def in_call_context(event: Event) -> None:
                token = attach(parent_of(event))
                try:
                    result = handler(event)
                    if isawaitable(result):
                        await result
                finally:
                    detach(token)

            return in_call_context
        handler_counts = tally.handlers
        traced = self.tracer is not None

        # One coroutine per call whether it is traced, counted or both.
        async def counted(event: Event) -> None:
            started = time.perf_counter()
            outcome = "error"
            token = None
            try:
                if traced:
                    token = attach(parent_of(event))
                result = handler(event)
                if isawaitable(result):
                    await result
                outcome = "ok"
            except BaseException as exc:
                if is_cancellation(exc):
                    outcome = "cancelled"
                raise
            finally:
                if token is not None:
                    detach(token)
                name = event.get("Event-Name") or "UNKNOWN"
                key = ((n.EVENT_NAME, name), ("result", outcome))
                handler_counts[key] = handler_counts.get(key, 0) + 1
                instruments.handler_duration.record(
                    time.perf_counter() - started, {n.EVENT_NAME: name, "result": outcome}
                )

        return counted

    # --- commands ---------------------------------------------------------------------
    async def observe_command(self, send: SendCommand, data: bytes, label: str) -> Reply:
        """Run ``send(data, label)`` inside a ``send_command`` span, with metrics."""
        name, span_attributes, labels, count_key = _command_facts(label)
        span = None
        if self.tracer is not None:
            # The attributes go in with the span: one pass through the SDK's checks.
            # A copy: the SDK hands them to the sampler, which may keep them.
            attributes = dict(span_attributes)
            span = self.tracer.start_span(n.SEND_COMMAND, attributes=attributes)
            if not span.is_recording():
                span.end()
                span = None
        instruments = self.instruments
        started = time.perf_counter()
        try:
            reply = await send(data, label)
        except BaseException as exc:
            if span is not None:
                if not is_cancellation(exc):
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                if isinstance(exc, ConnectionLost) and exc.stage is not None:
                    span.set_attribute("command.stage", exc.stage.value)
                span.end()
            if instruments is not None:
                error = (
                    "cancelled"
                    if is_cancellation(exc)
                    else "connection_lost"
                    if isinstance(exc, ConnectionLost)
                    else type(exc).__name__
                )
                instruments.commands_errors.add(1, {"command": name, "error": error})
                instruments.commands_duration.record(time.perf_counter() - started, labels)
                if isinstance(exc, TimeoutError):  # the command's own timeout= expired
                    instruments.timeouts.add(1, {"operation": "command"})
            raise
        failed = _reply_failed(reply)
        if name in ("auth", "userauth") and not failed:
            self._authenticated = True
        if span is not None:
            span.set_attribute(n.COMMAND_REPLY, _reply_text(reply))
            if failed:
                span.set_status(Status(StatusCode.ERROR, _reply_text(reply)))
            span.end()
        if instruments is not None:
            # Counted here, reported when a reader collects (see Tally).
            counts = self._tally.commands_sent if self._tally is not None else None
            if counts is not None:
                counts[count_key] = counts.get(count_key, 0) + 1
            instruments.commands_duration.record(time.perf_counter() - started, labels)
            if failed:
                instruments.commands_errors.add(1, {"command": name, "error": "err_reply"})
        return reply

    # --- events ------------------------------------------------------------------------
    def event_received(self, event: Event) -> None:
        """The connection's event hook: never lets a telemetry failure reach the reader."""
        try:
            self._on_event(event)
        except Exception:
            logger.debug("event telemetry failed", exc_info=True)

    def _on_event(self, event: Event) -> None:
        tracer = self.tracer
        # A lazily decoded event answers these few lookups from its bytes; the full
        # decode happens only for a span that records (it needs every header). While
        # spans record, decoding first makes every lookup below a dict lookup.
        headers: Mapping[str, str] = (
            event.headers._first if tracer is not None and self._recording else event
        )
        name = headers.get("Event-Name") or "UNKNOWN"
        subclass = headers.get("Event-Subclass") if name == "CUSTOM" else None
        instruments = self.instruments
        tally = self._tally
        if tally is not None:
            counts = tally.events_received
            key: TallyKey = (
                ((n.EVENT_NAME, name),)
                if subclass is None
                else ((n.EVENT_NAME, name), ("event.subclass", subclass))
            )
            counts[key] = counts.get(key, 0) + 1
            if name == "DTMF":
                # The source, never the digit: digits over time spell PINs and card numbers.
                source = headers.get("DTMF-Source") or "UNKNOWN"
                tally.add("dtmf_received", 1, {"dtmf.source": source})
            elif subclass is not None and subclass in TRANSFER_SUBCLASSES:
                role, kind = transfer_kind(subclass, headers)
                tally.add("transfers", 1, {n.TRANSFER_ROLE: role, n.TRANSFER_TYPE: kind})
        lifecycle = self._lifecycle if name in LIFECYCLE_EVENTS else None
        custom = (
            self._custom
            if subclass is not None and subclass in CUSTOM_SUBCLASSES and self.custom_enabled
            else None
        )
        if tracer is None:
            if lifecycle is not None:
                lifecycle.process(name, headers, None)  # metrics only
            return

        call_key = headers.get("Channel-Call-UUID") or headers.get("Unique-ID")
        calls = self._calls
        parent: Context | None
        if call_key is not None:
            parent = calls.parent(call_key, headers)
            starts_trace = parent is None
            if starts_trace:
                parent = Context()  # the call's first span is the root of its own trace
        else:
            starts_trace = False
            parent = self._base
        span = tracer.start_span(n.PROCESS_EVENT, context=parent)
        recording = self._recording = span.is_recording()
        if recording:
            headers = event.headers._first
            limit = self._attribute_limit
            if limit is None:
                limit = self._attribute_limit = span_attribute_limit(span)
            span.set_attributes(event_attributes(event, limit))
        if starts_trace and call_key is not None:
            calls.root(call_key, span.get_span_context())
        if recording:
            # A call sampled out at its root stays out: its event spans are not built.
            if lifecycle is not None or custom is not None:
                inner = trace.set_span_in_context(span, parent)
                if lifecycle is not None:
                    lifecycle.process(name, headers, inner)
                if custom is not None and subclass is not None:
                    custom.process(subclass, headers, inner)
        elif lifecycle is not None and instruments is not None:
            lifecycle.process(name, headers, None)  # its metrics still count
        span.end()
        if call_key is not None:
            if name == "CHANNEL_CREATE":
                calls.leg_created(call_key)
            elif name == "CHANNEL_DESTROY":
                calls.leg_destroyed(call_key)


@contextmanager
def _attached(context: Context) -> Iterator[object]:
    token = otel_context.attach(context)
    try:
        yield None
    finally:
        otel_context.detach(token)


@functools.lru_cache(maxsize=256)
def _command_facts(
    label: str,
) -> tuple[str, Mapping[str, str], Mapping[str, str], TallyKey]:
    """What a command's span and metrics say about ``label``, worked out once per label.

    The command name, the span's attributes known before the reply, the metrics'
    labels and the tally key. Labels repeat (``api status``, ``sendmsg``), so a
    connection running one command after another looks them up instead of
    splitting and matching the label every time. Bounded: a label carrying
    arguments does not grow it without limit. Nothing here may be mutated.
    """
    name = command_name(label)
    attributes = {n.COMMAND_NAME: name}
    if name in ("api", "bgapi"):
        words = label.split(" ", 2)
        if len(words) > 1 and _API_NAME.fullmatch(words[1]):
            attributes["command.api"] = words[1]
    return name, attributes, {"command": name}, (("command", name),)


def _reply_failed(reply: Reply) -> bool:
    if isinstance(reply, CommandReply):
        return not reply.ok
    if isinstance(reply, ApiResponse):
        return not reply.ok
    return False


def _reply_text(reply: Reply) -> str:
    """What FreeSWITCH answered, without the body of an api response (it can hold data)."""
    if isinstance(reply, CommandReply):
        return reply.reply_text[:_REPLY_LIMIT]
    body = reply.body.lstrip()
    if body.startswith(("-ERR", "-USAGE")):
        return body.split("\n", 1)[0][:_REPLY_LIMIT]
    return "+OK"
