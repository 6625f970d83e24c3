"""Consumer: a decorator-driven event-consuming app (Genesis style)."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import TaskStatus
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from . import tracing
from ._client_core import event_command_words
from ._dispatch import DEFAULT_HANDLER_THREADS, in_worker_thread, is_async_callable
from ._exceptions import ConnectionLost, ConnectTimeout, LocalProtocolError
from ._inbound import Inbound
from ._reconnect import Backoff
from ._subscription import ConnectionGap
from ._util import logger
from .protocol import Event, EventFormat, commands

__all__ = ["Consumer", "filtrate"]

Handler = Callable[[Event], Awaitable[Any] | Any]
H = TypeVar("H", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Filter:
    key: str
    value: str | None
    regex: bool

    def accepts(self, event: Event) -> bool:
        content = event.get(self.key)
        if content is None:
            return False
        if self.value is None:
            return True
        if self.regex:
            return re.match(self.value, content) is not None
        return content == self.value


def filtrate(key: str, value: str | None = None, regex: bool = False) -> Callable[[H], H]:
    """Only call the decorated handler for events whose header ``key`` matches.

    ``value=None`` requires the header to be present; ``regex=True`` matches
    ``value`` as a regular expression (``re.match``). Stacked filters all apply.
    Put it under ``@app.handle(...)``.
    """
    if regex and value is not None:
        re.compile(value)  # a bad pattern fails at decoration time, not per event
    new_filter = _Filter(key, value, regex)

    def decorate(function: H) -> H:
        filters: tuple[_Filter, ...] = (*getattr(function, "__genesis_filters__", ()), new_filter)
        inner = (
            getattr(function, "__wrapped__", function)
            if hasattr(function, "__genesis_filters__")
            else function
        )

        wrapper: Callable[[Event], Any]
        if is_async_callable(inner):

            @functools.wraps(inner)
            async def wrapper(event: Event) -> Any:
                if all(f.accepts(event) for f in filters):
                    result = inner(event)
                    if isinstance(result, Awaitable):
                        return await result
                    return result
                return None

        else:
            # Stays a plain function, so whoever runs it runs it in a worker thread.
            @functools.wraps(inner)
            def wrapper(event: Event) -> Any:
                if all(f.accepts(event) for f in filters):
                    return inner(event)
                return None

        wrapper.__genesis_filters__ = filters  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _for_client(handler: Handler, limiter: anyio.CapacityLimiter) -> Handler:
    """A filtered plain ``def`` handler checks its filters in the loop, runs in a thread."""
    filters: tuple[_Filter, ...] | None = getattr(handler, "__genesis_filters__", None)
    inner = getattr(handler, "__wrapped__", None)
    if not filters or inner is None or is_async_callable(handler):
        return handler
    threaded = in_worker_thread(inner, limiter)

    @functools.wraps(inner)
    async def filtered(event: Event) -> None:
        if all(f.accepts(event) for f in filters):
            result = threaded(event)
            if isinstance(result, Awaitable):
                await result

    return filtered


def _switch_can_filter(header: str, value: str) -> bool:
    # A filter FreeSWITCH cannot be given exactly (an empty value, a keyword header)
    # stays a local filter only.
    try:
        commands.filter(header, value)
    except LocalProtocolError:
        return False
    return True


class Consumer:
    """Consume FreeSWITCH events with decorated handlers::

        app = Consumer("127.0.0.1", 8021, "ClueCon")

        @app.handle("CHANNEL_ANSWER")
        async def answered(event: Event) -> None:
            print(event.unique_id)

        trio.run(app.run)

    ``run`` subscribes only to the events the handlers need (CUSTOM
    subclasses by name), pushes handler filters to FreeSWITCH when every
    handler has one, runs each handler in its own worker inside the
    connection's task group, and stops cleanly when cancelled.

    With ``reconnect=True`` (or a :class:`Backoff`) it runs on a reconnecting
    :class:`Inbound`: a lost connection is re-established with exponential
    backoff and jitter (``max_backoff`` caps the wait when ``reconnect=True``),
    subscriptions and filters are asked for again, the handlers stay, and
    functions decorated with :meth:`on_gap` hear about each gap. The first
    connection is retried with the same backoff too.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8021,
        password: str = "ClueCon",
        *,
        timeout: float = 5.0,
        event_format: EventFormat = "plain",
        concurrent: bool = True,
        reconnect: bool | Backoff = False,
        max_backoff: float = 30.0,
        liveness_timeout: float | None = None,
        handler_threads: int = DEFAULT_HANDLER_THREADS,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.host = host
        self.port = port
        self.password = password
        self.timeout = timeout
        self.event_format = event_format
        self.concurrent = concurrent
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.liveness_timeout = liveness_timeout
        self.handler_threads = handler_threads
        self.handlers: dict[str, list[Handler]] = {}
        self.gap_handlers: list[Callable[[ConnectionGap], Any]] = []
        self.client: Inbound | None = None
        # Set while a client is entered and subscribed (its own readiness says the rest).
        self._started = anyio.Event()

    def __repr__(self) -> str:
        return f"<Consumer {self.host}:{self.port} handlers={sorted(self.handlers)}>"

    def handle(self, event: str) -> Callable[[H], H]:
        """Register the decorated function for an event name or CUSTOM subclass."""
        if not event or any(c.isspace() for c in event):
            raise ValueError(f"invalid event name {event!r}")

        def decorate(function: H) -> H:
            self.handlers.setdefault(event, []).append(function)
            return function

        return decorate

    def on_gap(self, function: H) -> H:
        """Call the decorated function with a :class:`ConnectionGap` after each reconnect.

        It runs once the new connection is subscribed again (a plain ``def`` in a
        worker thread); events between the loss and then may have been missed.
        """
        self.gap_handlers.append(function)
        return function

    def backoff(self) -> Backoff | None:
        """The backoff policy in use (None without ``reconnect``)."""
        if isinstance(self.reconnect, Backoff):
            return self.reconnect
        if not self.reconnect:
            return None
        return Backoff(initial=min(0.5, self.max_backoff), maximum=self.max_backoff)

    def _switch_filters(self) -> list[tuple[str, str]]:
        """FreeSWITCH filters OR together: push them only if they cover every handler."""
        pairs: list[tuple[str, str]] = []
        for handlers in self.handlers.values():
            for handler in handlers:
                exact = [
                    (f.key, f.value)
                    for f in getattr(handler, "__genesis_filters__", ())
                    if f.value is not None and not f.regex and _switch_can_filter(f.key, f.value)
                ]
                if not exact:
                    return []
                pairs.extend(exact[:1])
        return list(dict.fromkeys(pairs))

    @property
    def subscribed(self) -> bool:
        """Connected, authenticated and subscribed (False while reconnecting)."""
        client = self.client
        return self._started.is_set() and client is not None and client.ready

    async def wait_ready(self) -> Inbound:
        """Wait until the consumer is connected and subscribed; returns its client.

        While it reconnects, this waits for the new connection.
        """
        while True:
            await self._started.wait()
            client = self.client
            if client is None:
                await anyio.lowlevel.checkpoint()
                continue
            try:
                await client.wait_ready()
            except ConnectionLost:
                # Lost without reconnect: serve() is ending (or retrying its first connection).
                await anyio.lowlevel.checkpoint()
                continue
            if self.client is client:
                return client

    async def run(self) -> None:
        """Consume events until cancelled (or the connection is lost, unless reconnecting)."""
        await self.serve()

    async def serve(self, *, task_status: TaskStatus[Inbound] = anyio.TASK_STATUS_IGNORED) -> None:
        """Like :meth:`run`, for ``await task_group.start(app.serve)``: started once subscribed."""
        backoff = self.backoff()
        start_once = _StartOnce(task_status)
        attempt = 0
        while True:
            try:
                await self._serve_once(start_once, backoff)
            except (ConnectionLost, ConnectTimeout, OSError) as exc:
                if backoff is None or start_once.done:
                    raise
                # The first connection: once it is up, the Inbound reconnects by itself.
                delay = backoff.delay(attempt)
                attempt += 1
                logger.warning("consumer could not connect (%s); retrying in %.2f s", exc, delay)
                await anyio.sleep(delay)
                continue
            return

    async def _serve_once(self, task_status: _StartOnce, backoff: Backoff | None) -> None:
        # consumer.start covers connect + subscribe; consumer.stop covers the teardown.
        with contextlib.ExitStack() as spans:
            starting = spans.enter_context(
                tracing.consumer_start(self.host, self.port, tracer_provider=self._tracer_provider)
            )
            await self._serve_connection(task_status, backoff, starting, spans)

    async def _serve_connection(
        self,
        task_status: _StartOnce,
        backoff: Backoff | None,
        starting: tracing.OperationSpan,
        spans: contextlib.ExitStack,
    ) -> None:
        async with Inbound(
            self.host,
            self.port,
            self.password,
            timeout=self.timeout,
            reconnect=backoff or False,
            liveness_timeout=self.liveness_timeout,
            handler_threads=self.handler_threads,
            tracer_provider=self._tracer_provider,
            meter_provider=self._meter_provider,
        ) as client:
            self.client = client
            try:
                for name, handlers in self.handlers.items():
                    for handler in handlers:
                        client.on(
                            name,
                            _for_client(handler, client.handler_limiter),
                            concurrent=self.concurrent,
                        )
                await self._subscribe(client, reconnecting=backoff is not None)
                starting.close()
                self._started.set()
                task_status.started(client)
                if backoff is None:
                    await client.connection.closed.wait()
                    reason = client.connection.lost_reason
                    raise reason if isinstance(reason, ConnectionLost) else ConnectionLost()
                # The client reconnects by itself from now on: only gaps are ours to tell.
                async with client.gaps() as gaps:
                    async for gap in gaps:
                        await self._tell_gap(client, gap)
            finally:
                self.client = None
                if self._started.is_set():
                    self._started = anyio.Event()
                spans.enter_context(
                    tracing.consumer_stop(
                        self.host, self.port, tracer_provider=self._tracer_provider
                    )
                )

    async def _subscribe(self, client: Inbound, *, reconnecting: bool) -> None:
        words = event_command_words(self.handlers or ["ALL"])
        while True:
            try:
                await client.events(*words, event_format=self.event_format)
                for header, value in self._switch_filters():
                    await client.filter(header, value)
                return
            except ConnectionLost:
                if not reconnecting:
                    raise
            # Connected, then lost before the switch confirmed it all: the client reconnects
            # (and logs it) as after any drop; ask its next connection for what is missing.
            # No gap to tell: no event had been asked for yet.
            await client.wait_ready()

    async def _tell_gap(self, client: Inbound, gap: ConnectionGap) -> None:
        for handler in self.gap_handlers:
            try:
                if is_async_callable(handler):
                    await handler(gap)
                else:
                    await anyio.to_thread.run_sync(handler, gap, limiter=client.handler_limiter)
            except Exception:
                logger.exception("gap handler %r failed on %r", handler, gap)


class _StartOnce:
    """Reports readiness to ``task_group.start`` on the first connection only."""

    def __init__(self, task_status: TaskStatus[Inbound]) -> None:
        self._task_status: TaskStatus[Inbound] | None = task_status

    @property
    def done(self) -> bool:
        return self._task_status is None

    def started(self, client: Inbound) -> None:
        if self._task_status is not None:
            self._task_status.started(client)
            self._task_status = None
