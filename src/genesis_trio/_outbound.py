"""Outbound: the server FreeSWITCH's ``socket`` application connects to, one Session per call."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute, TaskStatus
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from . import tracing
from ._exceptions import ChannelHangup, GenesisError
from ._session import Session
from ._stream import ESLConnection
from ._util import current_call_uuid, logger
from .protocol import EventFormat

__all__ = ["Outbound", "OutboundHandler"]

OutboundHandler = Callable[[Session], Awaitable[Any]]


def peer_address(stream: anyio.abc.SocketStream, raw: socket.socket | None) -> tuple[str, int]:
    """FreeSWITCH's end of an accepted socket: ``stream.extra(remote_address)``, or ("", 0).

    ``raw``: the stream's socket when the connection found it (IPv4: its
    ``getpeername()`` is what ``remote_address`` gives, without the stream
    building its whole attribute map, a getpeername included, once more).
    """
    if raw is not None and raw.family == socket.AF_INET:
        try:
            host, port = raw.getpeername()
        except OSError:
            return "", 0
        return str(host), int(port)
    peer = stream.extra(SocketAttribute.remote_address, ("", 0))
    return (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else ("", 0)


class Outbound:
    """An outbound ESL server: every call routed to it runs ``handler(session)``.

    ::

        async def handler(session: Session) -> None:
            await session.channel.answer()
            await session.channel.playback("ivr/welcome.wav")

        app = Outbound(handler, "127.0.0.1", 8084)
        async with anyio.create_task_group() as tg:
            host, port = await tg.start(app.serve)   # listening now (port 0 works)

    Each connection gets its own task group under the server's: the session's
    reader, its DTMF handlers and anything started with
    :meth:`Session.start_soon` live there and end with the call. Before the
    handler runs the server sends ``connect``, ``myevents`` (``event_format``)
    and ``linger`` (True: until we leave; an int: seconds); each can be turned
    off. A handler that raises is logged with the call's uuid and the server
    carries on; one that ends with :class:`~genesis_trio.ChannelHangup` (the
    caller hung up during a prompt) is logged at DEBUG only. When the handler
    returns the session says ``exit`` and the socket closes. Cancelling the
    server closes every session the same way.
    """

    def __init__(
        self,
        handler: OutboundHandler,
        host: str = "127.0.0.1",
        port: int = 8084,
        *,
        connect: bool = True,
        myevents: bool = True,
        event_format: EventFormat = "plain",
        linger: bool | int = True,
        setup_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_frame_size: int | None = None,
        command_timeout: float | None = None,
        write_timeout: float | None = 30.0,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if linger is not True and linger is not False and int(linger) < 0:
            raise ValueError("linger seconds must be >= 0")
        self.handler = handler
        self.host = host
        self.port = port
        self.connect = connect
        self.myevents = myevents
        self.event_format: EventFormat = event_format
        self.linger = linger
        self.setup_timeout = setup_timeout
        self.close_timeout = close_timeout
        self._max_frame_size = max_frame_size
        self.command_timeout = command_timeout
        self.write_timeout = write_timeout
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.address: tuple[str, int] | None = None
        self.sessions: set[Session] = set()
        self.draining = False
        self._accepting: anyio.CancelScope | None = None
        self._calls_scope: anyio.CancelScope | None = None
        self._stopped = anyio.Event()

    def __repr__(self) -> str:
        where = self.address or (self.host, self.port)
        return f"<Outbound {where[0]}:{where[1]} sessions={len(self.sessions)}>"

    async def serve(
        self, *, task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until cancelled; ``task_status.started`` gets the bound (host, port)."""
        self.draining = False
        self._stopped = anyio.Event()
        try:
            async with anyio.create_task_group() as connections:
                self._calls_scope = connections.cancel_scope
                with anyio.CancelScope() as accepting:
                    self._accepting = accepting
                    listener = await anyio.create_tcp_listener(
                        local_host=self.host, local_port=self.port
                    )
                    async with listener:
                        bound = listener.extra(SocketAttribute.local_address)
                        assert isinstance(bound, tuple)
                        self.address = (str(bound[0]), int(bound[1]))
                        logger.info("outbound server listening on %s:%s", *self.address)
                        task_status.started(self.address)
                        await listener.serve(self._handle_connection, task_group=connections)
                # Draining: the listener is closed, the calls in flight carry on.
        finally:
            self._accepting = None
            self._stopped.set()

    @property
    def listening(self) -> bool:
        """Whether new calls are accepted: listening and not draining (readiness)."""
        return self._accepting is not None and self.address is not None and not self.draining

    async def drain(self, grace: float = 30.0) -> bool:
        """Stop accepting, let the live calls finish for ``grace`` seconds, then cancel them.

        A cancelled call still closes its session properly (``exit``). Returns
        True when every call ended on its own (a clean drain). :meth:`serve`
        returns once the last call is gone.
        """
        self.draining = True
        if self._accepting is not None:
            self._accepting.cancel()
        if self._stopped.is_set() or self._calls_scope is None:
            return True
        with anyio.move_on_after(grace):
            await self._stopped.wait()
            return True
        logger.warning(
            "drain timeout after %.1f s: cancelling %d live call(s)", grace, len(self.sessions)
        )
        self._calls_scope.cancel()
        await self._stopped.wait()
        return False

    async def run(self) -> None:
        """Serve until cancelled (``trio.run(app.run)``)."""
        await self.serve()

    async def _handle_connection(self, stream: anyio.abc.SocketStream) -> None:
        telemetry = tracing.ConnectionTelemetry.create(
            "outbound",
            tracer_provider=self._tracer_provider,
            meter_provider=self._meter_provider,
        )
        connection = ESLConnection(
            stream,
            max_frame_size=self._max_frame_size,
            write_timeout=self.write_timeout,
            observer=telemetry,
        )
        peer_host, peer_port = peer_address(stream, connection.direct_socket)
        try:
            with tracing.outbound_handle_connection(
                peer_host, peer_port, connection=connection, tracer_provider=self._tracer_provider
            ):
                await self._serve_call(connection)
        except* Exception as failures:
            # One call's failure never stops the server (or another call).
            for failure in failures.exceptions:
                logger.error("outbound connection from %s failed", peer_host, exc_info=failure)

    async def _serve_call(self, connection: ESLConnection[tracing.ConnectionTelemetry]) -> None:
        async with anyio.create_task_group() as call:
            # Not ``call.start``: that runs the task in a nursery of its own and moves it
            # over once started, which costs a session more than the reader's first step.
            reading = anyio.CancelScope(shield=True)
            reader_started = anyio.Event()
            call.start_soon(self._read, connection, reading, reader_started)
            await reader_started.wait()
            session = Session(connection, call)
            session.command_timeout = self.command_timeout
            self.sessions.add(session)
            try:
                await self._run_session(session)
            finally:
                self.sessions.discard(session)
                # The reader is still alive even when the server is being
                # cancelled, so the goodbye (exit, +OK bye) completes.
                await session.aclose(grace=self.close_timeout)
                reading.cancel()
                call.cancel_scope.cancel()

    async def _read(
        self, connection: ESLConnection, scope: anyio.CancelScope, started: anyio.Event
    ) -> None:
        """The connection's reader (and its handler workers), shielded until the session closed.

        Whoever cancels the server cancels the handler; the reader must outlive
        it long enough to read the reply to ``exit``. ``_serve_call`` cancels
        ``scope`` (a shielded one) right after the session closed.
        """
        with scope:
            async with anyio.create_task_group() as io:
                # The reader runs in this task: a task of its own would cost a session
                # a task spawn, its cancel scope and its done-event.
                await connection.run(io, started.set)

    async def _run_session(self, session: Session) -> None:
        try:
            # fail_after, without its generator-based context manager.
            with anyio.CancelScope(deadline=anyio.current_time() + self.setup_timeout) as setup:
                await session.setup(
                    connect=self.connect,
                    myevents=self.myevents,
                    event_format=self.event_format,
                    linger=self.linger,
                )
            if setup.cancelled_caught and anyio.current_time() >= setup.deadline:
                raise TimeoutError
        except (GenesisError, TimeoutError) as exc:
            logger.warning("outbound session setup failed: %s", exc)
            tracing.record_connection_error("outbound", exc, meter_provider=self._meter_provider)
            return
        token = current_call_uuid.set(session.uuid if session.connected else None)
        try:
            await self.handler(session)
        except* ChannelHangup as hangups:
            # The caller hanging up is how most calls end, not a failure of the app.
            uuid = session.uuid if session.connected else "unknown"
            for hangup in hangups.exceptions:
                logger.debug("outbound handler of call %s ended by the hangup: %s", uuid, hangup)
        except* Exception as failures:
            # Cancellation is not an Exception: except* lets it through untouched.
            uuid = session.uuid if session.connected else "unknown"
            for failure in failures.exceptions:
                logger.error("outbound handler failed for call %s", uuid, exc_info=failure)
                tracing.record_connection_error(
                    "outbound", failure, meter_provider=self._meter_provider
                )
        finally:
            current_call_uuid.reset(token)
