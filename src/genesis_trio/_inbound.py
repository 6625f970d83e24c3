"""The inbound client: our program connects to FreeSWITCH's event socket."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType

import anyio
import anyio.abc
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from . import tracing
from ._client import ESLClient
from ._dispatch import DEFAULT_HANDLER_THREADS
from ._exceptions import AuthenticationError, ConnectionLost, ConnectTimeout
from ._stream import ESLConnection
from ._util import collapse_single_exception_group, logger
from .protocol import CommandReply
from .protocol import commands as cmd

__all__ = ["Inbound"]


class Inbound(ESLClient):
    """An authenticated inbound ESL connection, as an async context manager::

        async with Inbound("127.0.0.1", 8021, "ClueCon") as client:
            print(await client.api("status"))

    Entering connects (within ``timeout`` seconds), waits for the
    ``auth/request`` greeting and authenticates; leaving sends ``exit``,
    closes the socket and cancels every task the connection started (its
    reader and the handlers registered with :meth:`on`).
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
        self._exit_stack: AsyncExitStack | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        # The password stays out of reprs, logs and tracebacks.
        return f"<Inbound {self.host}:{self.port} connected={self.is_connected}>"

    async def __aenter__(self) -> Inbound:
        if self._task_group is not None:
            raise RuntimeError("this Inbound is already connected")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._telemetry = tracing.ConnectionTelemetry.create(
            "inbound", tracer_provider=self._tracer_provider, meter_provider=self._meter_provider
        )
        try:
            with tracing.inbound_connect(
                self.host, self.port, tracer_provider=self._tracer_provider
            ):
                await self._connect(task_group)
        except BaseException as exc:
            await self._close_task_group(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def _connect(self, task_group: anyio.abc.TaskGroup) -> None:
        try:
            with anyio.fail_after(self.timeout):
                stream = await anyio.connect_tcp(self.host, self.port)
        except TimeoutError:
            raise ConnectTimeout(
                f"no connection to {self.host}:{self.port} within {self.timeout} s"
            ) from None
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        self._connection = ESLConnection(
            stream,
            max_frame_size=self._max_frame_size,
            write_timeout=self.write_timeout,
            observer=self._telemetry,
        )
        self._connection.start(task_group)
        try:
            with anyio.fail_after(self.timeout):
                await self._authenticate()
        except TimeoutError:
            await self._connection.aclose(send_exit=False)
            raise ConnectTimeout(
                f"{self.host}:{self.port} did not complete the ESL greeting in {self.timeout} s"
            ) from None
        except BaseException:
            await self._connection.aclose(send_exit=False)
            raise
        logger.debug("connected to %s:%s", self.host, self.port)

    async def _authenticate(self) -> None:
        connection = self._connection
        async with anyio.create_task_group() as race:
            # The greeting never comes if the peer closes first: stop waiting then.
            async def closed_early() -> None:
                await connection.closed.wait()
                race.cancel_scope.cancel()

            race.start_soon(closed_early)
            await connection.auth_requested.wait()
            race.cancel_scope.cancel()
        if not connection.auth_requested.is_set():
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
        try:
            await self._connection.aclose(send_exit=True)
        finally:
            await self._close_task_group(exc_type, exc, tb)
        return None

    async def _close_task_group(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return
        task_group.cancel_scope.cancel()
        with collapse_single_exception_group():
            await task_group.__aexit__(exc_type, exc, tb)
