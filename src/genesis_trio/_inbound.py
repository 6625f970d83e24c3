"""The inbound client: our program connects to FreeSWITCH's event socket."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from . import tracing
from ._client import ESLClient
from ._dispatch import (
    DEFAULT_HANDLER_THREADS,
    EventHandler,
    HandlerPool,
    HandlerRegistration,
)
from ._exceptions import AuthenticationError, CommandError, ConnectionLost, ConnectTimeout
from ._reconnect import Backoff, LivenessStream, count_reconnect
from ._stream import ESLConnection
from ._stream._routes import Routes
from ._subscription import ConnectionGap, Overflow, Subscription
from ._util import collapse_single_exception_group, logger
from .protocol import CommandReply, Event
from .protocol import commands as cmd

if TYPE_CHECKING:
    from ._client_core import _SwitchState

__all__ = ["Inbound"]


class Inbound(ESLClient):
    """An authenticated inbound ESL connection, as an async context manager::

        async with Inbound("127.0.0.1", 8021, "ClueCon") as client:
            print(await client.api("status"))

    Entering connects (within ``timeout`` seconds), waits for the
    ``auth/request`` greeting and authenticates; leaving sends ``exit``,
    closes the socket and cancels every task the connection started (its
    reader and the handlers registered with :meth:`on`).

    With ``reconnect=True`` (or a :class:`Backoff`), a connection lost after
    entering is re-established in the background, with exponential backoff and
    jitter, until the block is left: the new connection authenticates, asks
    again for the events, filters, log level and ``divert_events`` you asked
    for, keeps the handlers registered with :meth:`on`, and tells ``gaps=True``
    subscriptions about the gap with a :class:`ConnectionGap`. Meanwhile commands
    fail at once with :class:`ConnectionLost` (``await wait_ready()`` waits for the
    next connection). The first connection is not retried: its failure raises.
    ``liveness_timeout`` declares a connection dead when nothing at all arrives
    for that many seconds (it subscribes to HEARTBEAT, which FreeSWITCH sends
    every 20 s). See ``docs/inbound.md``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8021,
        password: str = "ClueCon",
        *,
        user: str | None = None,
        timeout: float = 5.0,
        command_timeout: float | None = None,
        write_timeout: float | None = 30.0,
        max_frame_size: int | None = None,
        reconnect: bool | Backoff = False,
        liveness_timeout: float | None = None,
        handler_threads: int = DEFAULT_HANDLER_THREADS,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        super().__init__()
        # None: the global OpenTelemetry providers, read when the connection starts.
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._telemetry: tracing.ConnectionTelemetry | None = None
        self.host = host
        self.port = port
        self._password = password
        self._user = user
        self.timeout = timeout
        self.command_timeout = command_timeout
        self.write_timeout = write_timeout
        self._max_frame_size = max_frame_size
        if handler_threads < 1:
            raise ValueError("handler_threads must be at least 1")
        self.handler_threads = handler_threads
        if liveness_timeout is not None and not liveness_timeout > 0:
            raise ValueError("liveness_timeout must be positive (or None)")
        self.liveness_timeout = liveness_timeout
        #: The backoff policy when reconnecting, None when not.
        self.backoff: Backoff | None = (
            Backoff() if reconnect is True else (reconnect if reconnect else None)
        )
        #: How many times the connection was re-established since entering.
        self.reconnects = 0
        self._exit_stack: AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        # True while a connection is up and has what was asked of the switch again; None
        # outside the block; an Event only while someone waits (~300 bytes per idle client).
        self._ready: anyio.Event | bool | None = None
        self._leaving = False
        # A reconnecting client's handlers and gaps=True subscriptions outlive connections.
        self._lasting_routes: Routes | None = None
        self._lasting_pool: HandlerPool | None = None
        # Weak: a closed subscription leaves by itself. Made on first use (~700 bytes).
        self._gap_subscriptions: weakref.WeakSet[Subscription[Any]] | None = None

    def __repr__(self) -> str:
        # The password stays out of reprs, logs and tracebacks.
        return f"<Inbound {self.host}:{self.port} connected={self.is_connected}>"

    @property
    def ready(self) -> bool:
        """Connected, authenticated, and (after a reconnect) asked the switch for all again."""
        ready = self._ready
        if isinstance(ready, anyio.Event):
            ready = ready.is_set()
        return bool(ready) and self.is_connected

    async def wait_ready(self) -> None:
        """Return once :attr:`ready`: at once while connected, else after the reconnect.

        Without ``reconnect`` a lost connection never comes back: :class:`ConnectionLost`.
        """
        while True:
            ready = self._ready
            if ready is None:
                raise RuntimeError("this Inbound is not entered")
            if ready is False:
                ready = self._ready = anyio.Event()
            await (anyio.lowlevel.checkpoint() if ready is True else ready.wait())
            if self.is_connected:
                return
            if self.backoff is None:
                reason = self._connection.lost_reason
                raise reason if isinstance(reason, ConnectionLost) else ConnectionLost()
            # Lost again before we looked: the supervisor is on it already.
            await anyio.lowlevel.checkpoint()

    @asynccontextmanager
    async def gaps(self) -> AsyncIterator[Subscription[ConnectionGap]]:
        """Only the :class:`ConnectionGap` markers of a reconnecting client, as they happen::

            async with client.gaps() as gaps:
                async for gap in gaps:
                    log.warning("missed events for %.1f s", gap.down_for)

        Without ``reconnect`` it yields nothing and ends when the client is left.
        """
        subscription: Subscription[ConnectionGap] = Subscription()
        self._gap_subscribers().add(subscription)
        if self._task_group is None:
            subscription.end()
        try:
            yield subscription
        finally:
            subscription.close()

    async def __aenter__(self) -> Inbound:
        if self._task_group is not None:
            raise RuntimeError("this Inbound is already connected")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._ready = False
        self._leaving = False
        self.reconnects = 0
        self._telemetry = tracing.ConnectionTelemetry.create(
            "inbound", tracer_provider=self._tracer_provider, meter_provider=self._meter_provider
        )
        if self.backoff is not None:
            self._lasting_routes = Routes()
            self._lasting_pool = HandlerPool(task_group)
        try:
            with tracing.inbound_connect(
                self.host,
                self.port,
                tracer_provider=self._tracer_provider,
                meter_provider=self._meter_provider,
            ):
                await self._connect(task_group)
        except BaseException as exc:
            await self._close_task_group(type(exc), exc, exc.__traceback__)
            raise
        self._set_ready()
        if self.backoff is not None:
            task_group.start_soon(self._supervise, self.backoff, name="esl-reconnect")
        return self

    async def _connect(
        self, task_group: anyio.abc.TaskGroup, intent: _SwitchState | None = None
    ) -> None:
        try:
            with anyio.fail_after(self.timeout):
                stream: anyio.abc.ByteStream = await anyio.connect_tcp(self.host, self.port)
        except TimeoutError:
            raise ConnectTimeout(
                f"no connection to {self.host}:{self.port} within {self.timeout} s"
            ) from None
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        if self.liveness_timeout is not None:
            stream = LivenessStream(stream, self.liveness_timeout)
        connection = self._connection = ESLConnection(
            stream,
            max_frame_size=self._max_frame_size,
            write_timeout=self.write_timeout,
            observer=self._telemetry,
        )
        if self._lasting_routes is not None:
            connection.add_event_hook(self._lasting_routes.route)
            connection.forward_logs(self._lasting_routes.deliver_log)
        if self.backoff is None:
            connection.start(task_group)
        else:
            # Its own task group: a lost connection's tasks end with it, not with the client.
            await task_group.start(self._own_connection, connection)
        try:
            with anyio.fail_after(self.timeout):
                await self._authenticate()
        except TimeoutError:
            await connection.aclose(send_exit=False)
            raise ConnectTimeout(
                f"{self.host}:{self.port} did not complete the ESL greeting in {self.timeout} s"
            ) from None
        except BaseException:
            await connection.aclose(send_exit=False)
            raise
        try:
            if intent is not None:
                await self._restore(intent)
            if self.liveness_timeout is not None:
                # An idle switch still sends these every 20 s; with filters, the library
                # keeps them coming (FreeSWITCH ORs filters: this one only adds HEARTBEATs).
                self._filters.hold("Event-Name", "HEARTBEAT")
                await self._filters.ensure("Event-Name", "HEARTBEAT")
                await self._ensure_switch_events(["HEARTBEAT"])
        except BaseException:
            await connection.aclose(send_exit=False)
            raise
        logger.debug("connected to %s:%s", self.host, self.port)

    @staticmethod
    async def _own_connection(
        connection: ESLConnection,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        async with anyio.create_task_group() as task_group:
            connection.start(task_group)
            task_status.started()

    async def _restore(self, intent: _SwitchState) -> None:
        """Ask the new connection's switch for what the lost one had been asked for."""
        words = intent.event_words()
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if words:
            steps.append(("event", partial(self.events, *words, event_format=intent.event_format)))
        for header, value in intent.filters.user_filters:
            steps.append(("filter", partial(self.filter, header, value)))
        if intent.log_level is not None:
            steps.append(("log", partial(self.log, intent.log_level)))
        if intent.divert_events:
            steps.append(("divert_events", partial(self.divert_events, True)))
        for what, step in steps:
            try:
                await step()
            except CommandError as exc:
                # Accepted on the old connection, refused now: say so, keep the rest.
                logger.error("reconnect: FreeSWITCH refused %s again: %s", what, exc)
        for name in intent.subscriptions:
            self._switch_subscriptions.setdefault(name, 0)

    async def _supervise(self, backoff: Backoff) -> None:
        """Wait for the connection to end; re-establish it, for as long as the client lives."""
        attempt = 0
        routes = self._lasting_routes
        assert routes is not None
        while True:
            connection = self._connection
            up_since = anyio.current_time()
            await connection.closed.wait()
            if self._leaving:
                return
            lost_at = anyio.current_time()
            assert self._ready is not None
            self._ready = False
            routes.hold()  # the new connection's first items come after the gap marker
            intent = self._switch_state
            reason = str(connection.lost_reason or "connection closed")
            if lost_at - up_since >= backoff.healthy_after:
                attempt = 0
            logger.warning(
                "lost the connection to %s:%s (%s); reconnecting", self.host, self.port, reason
            )
            attempts = 0
            while True:
                delay = backoff.delay(attempt)  # jitter from the module's shared generator
                attempt += 1
                attempts += 1
                logger.info(
                    "reconnecting to %s:%s in %.2f s (attempt %d)",
                    self.host,
                    self.port,
                    delay,
                    attempts,
                )
                await anyio.sleep(delay)
                assert self._task_group is not None
                try:
                    await self._connect(self._task_group, intent)
                except (ConnectionLost, ConnectTimeout, AuthenticationError, OSError) as exc:
                    logger.warning(
                        "reconnecting to %s:%s failed (attempt %d): %s",
                        self.host,
                        self.port,
                        attempts,
                        exc,
                    )
                    count_reconnect(exc, self._meter_provider)
                    continue
                break
            self.reconnects += 1
            count_reconnect(None, self._meter_provider)
            restored_at = anyio.current_time()
            logger.warning(
                "reconnected to %s:%s after %.1f s (%d attempts)",
                self.host,
                self.port,
                restored_at - lost_at,
                attempts,
            )
            gap = ConnectionGap(reason, lost_at, restored_at, attempts)
            for subscription in list(self._gap_subscriptions or ()):
                subscription.deliver(gap)
            routes.release()
            self._set_ready()

    def _set_ready(self) -> None:
        ready, self._ready = self._ready, True
        if isinstance(ready, anyio.Event):
            ready.set()  # its waiters hold it; later ones see True

    # --- what outlives one connection -------------------------------------------------
    def _gap_subscribers(self) -> weakref.WeakSet[Subscription[Any]]:
        if self._gap_subscriptions is None:
            self._gap_subscriptions = weakref.WeakSet()
        return self._gap_subscriptions

    def _open_subscription(
        self,
        keys: list[str],
        *,
        uuid: str | None,
        matches: Callable[[Event], bool] | None,
        max_buffer: int,
        overflow: Overflow,
        gaps: bool,
    ) -> Subscription[Any]:
        routes = self._lasting_routes
        if not gaps or routes is None:
            return super()._open_subscription(
                keys,
                uuid=uuid,
                matches=matches,
                max_buffer=max_buffer,
                overflow=overflow,
                gaps=gaps,
            )
        subscription = routes.subscribe(
            keys, uuid=uuid, matches=matches, max_buffer=max_buffer, overflow=overflow
        )
        self._gap_subscribers().add(subscription)
        return subscription

    def _open_log_subscription(self, *, gaps: bool) -> Subscription[Any]:
        if not gaps or self._lasting_routes is None:
            return super()._open_log_subscription(gaps=gaps)
        subscription = self._lasting_routes.subscribe_logs(max_buffer=10_000)
        self._gap_subscribers().add(subscription)
        return subscription

    def _register_handler(
        self,
        keys: list[str],
        handler: EventHandler,
        *,
        concurrent: bool,
        max_concurrent: int,
        max_buffer: int,
        overflow: Overflow,
    ) -> HandlerRegistration:
        routes, pool = self._lasting_routes, self._lasting_pool
        if routes is None or pool is None:
            return super()._register_handler(
                keys,
                handler,
                concurrent=concurrent,
                max_concurrent=max_concurrent,
                max_buffer=max_buffer,
                overflow=overflow,
            )
        if self._telemetry is not None:
            handler = self._telemetry.wrap_handler(handler)
        return routes.add_handler(
            keys,
            pool,
            handler,
            uuid=None,
            max_concurrent=max_concurrent if concurrent else 1,
            max_buffer=max_buffer,
            overflow=overflow,
        )

    async def _authenticate(self) -> None:
        connection = self._connection
        async with anyio.create_task_group() as race:
            # The greeting never comes if the peer closes first: stop waiting then.
            async def closed_early() -> None:
                await connection.closed.wait()
                race.cancel_scope.cancel()

            race.start_soon(closed_early)
            requested = connection.auth_requested  # once set, the connection forgets it
            await requested.wait()
            race.cancel_scope.cancel()
        if not requested.is_set():
            raise ConnectionLost(
                f"{self.host}:{self.port} closed the connection before asking for auth"
            )
        data = (
            cmd.auth(self._password)
            if self._user is None
            else cmd.userauth(self._user, self._password)
        )
        reply = await connection.send_command(data, "auth")
        if not isinstance(reply, CommandReply) or not reply.ok:
            text = reply.reply_text if isinstance(reply, CommandReply) else "unexpected reply"
            raise AuthenticationError(
                f"FreeSWITCH at {self.host}:{self.port} refused the credentials ({text})"
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._task_group is None:
            return None
        self._leaving = True
        try:
            await self._connection.aclose(send_exit=True)
        finally:
            self._end_lasting()
            await self._close_task_group(exc_type, exc, tb)
        return None

    def _end_lasting(self) -> None:
        routes, self._lasting_routes = self._lasting_routes, None
        pool, self._lasting_pool = self._lasting_pool, None
        for subscription in list(self._gap_subscriptions or ()):
            subscription.end()
        self._gap_subscriptions = None
        if pool is not None:
            pool.close()
        if routes is not None:
            routes.close(ConnectionLost("connection closed"), clean=True)

    async def _close_task_group(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return
        self._leaving = True
        self._end_lasting()
        task_group.cancel_scope.cancel()
        with collapse_single_exception_group():
            await task_group.__aexit__(exc_type, exc, tb)
