"""The operations endpoints: ``/health``, ``/ready`` and ``/metrics`` over HTTP.

::

    app = Consumer(...)
    ops = OpsServer(app, port=8000)
    async with anyio.create_task_group() as tg:
        await tg.start(ops.serve)
        await app.run()

Served by hypercorn (the ``ops`` extra) as a tiny ASGI app, in the caller's
task group. ``/metrics`` is the Prometheus text format of the OpenTelemetry
metrics the library records, through opentelemetry-exporter-prometheus:
install :func:`prometheus_meter_provider` (the CLI does) so that they are
collected.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio
import sniffio
from anyio.abc import TaskStatus

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider

    from ._consumer import Consumer
    from ._inbound import Inbound
    from ._outbound import Outbound
    from .protocol import Event

__all__ = ["OpsServer", "prometheus_meter_provider"]

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _missing_extra(what: str) -> ImportError:
    return ImportError(f"{what} needs the ops extra: pip install 'genesis-trio[ops]'")


def prometheus_meter_provider(*extra_readers: Any, resource: Any = None) -> MeterProvider:
    """An SDK MeterProvider whose metrics ``/metrics`` shows (plus ``extra_readers``).

    Set it globally (``opentelemetry.metrics.set_meter_provider``) or pass it to the apps
    as ``meter_provider=``. Its reader registers with prometheus_client's default registry.
    """
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:
        raise _missing_extra("prometheus_meter_provider") from None
    readers = [PrometheusMetricReader(), *extra_readers]
    if resource is None:
        return MeterProvider(metric_readers=readers)
    return MeterProvider(metric_readers=readers, resource=resource)


class _ConsumerReadiness:
    """Ready: connected, authenticated, subscribed, and an event seen within ``window``."""

    def __init__(self, consumer: Consumer, window: float) -> None:
        self.consumer = consumer
        self.window = window
        self._last: tuple[object, float] | None = None
        # FreeSWITCH sends HEARTBEAT every 20 s by default: subscribing to it makes an idle
        # switch still prove every 20 s that the connection carries events.
        # The filter keeps the switch-side filtering of an app whose handlers all filter
        # (FreeSWITCH filters OR together: this one only adds the HEARTBEATs).
        from ._consumer import filtrate

        consumer.handle("HEARTBEAT")(filtrate("Event-Name", "HEARTBEAT")(self._seen))

    async def _seen(self, event: Event) -> None:
        self.record_event()

    def record_event(self) -> None:
        client = self.consumer.client
        if client is not None:
            self._last = (client.connection, time.monotonic())

    def __call__(self) -> bool:
        client = self.consumer.client
        if client is None or not self.consumer.subscribed or self._last is None:
            return False
        seen_on, at = self._last
        # An event seen on an earlier connection (before a reconnect) says nothing about this one.
        return seen_on is client.connection and time.monotonic() - at <= self.window


class OpsServer:
    """``GET /health``, ``/ready``, ``/metrics`` for an app, served in your task group.

    ``app`` decides what ready means: a :class:`~genesis_trio.Consumer` is ready
    once connected, authenticated, subscribed and an event (a HEARTBEAT, which
    it subscribes to, or one you report with :meth:`record_event`) arrived within ``ready_window``
    seconds; an :class:`~genesis_trio.Outbound` server while it listens and is
    not draining; an :class:`~genesis_trio.Inbound` client while :attr:`~Inbound.ready`
    (connected, and after a reconnect subscribed again); a
    callable when it returns True; None: always. ``/health`` answers 200 as long
    as the process serves HTTP. Responses are JSON (``{"status": "ready"}``),
    503 when not ready, like Genesis's.
    """

    def __init__(
        self,
        app: Consumer | Outbound | Inbound | Callable[[], bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        ready_window: float = 30.0,
        registry: Any = None,
    ) -> None:
        from ._consumer import Consumer
        from ._inbound import Inbound
        from ._outbound import Outbound

        self.host = host
        self.port = port
        self.address: tuple[str, int] | None = None
        self._registry = registry
        self._consumer_readiness: _ConsumerReadiness | None = None
        self._ready: Callable[[], bool]
        if isinstance(app, Consumer):
            self._consumer_readiness = _ConsumerReadiness(app, ready_window)
            self._ready = self._consumer_readiness
        elif isinstance(app, Outbound):
            outbound = app
            self._ready = lambda: outbound.listening
        elif isinstance(app, Inbound):
            inbound = app
            # Connected, and after a reconnect subscribed again.
            self._ready = lambda: inbound.ready
        elif app is None:
            self._ready = lambda: True
        else:
            self._ready = app

    def record_event(self) -> None:
        """Tell a Consumer's readiness that an event arrived (HEARTBEATs are seen already)."""
        if self._consumer_readiness is not None:
            self._consumer_readiness.record_event()

    @property
    def ready(self) -> bool:
        return bool(self._ready())

    def _metrics_body(self) -> tuple[bytes, str]:
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
        except ImportError:
            raise _missing_extra("/metrics") from None
        registry = self._registry if self._registry is not None else REGISTRY
        return generate_latest(registry), CONTENT_TYPE_LATEST

    async def _asgi(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        content_type = "application/json"
        if method not in ("GET", "HEAD"):
            status, body = 405, {"status": "method not allowed"}
        elif path == "/health":
            status, body = 200, {"status": "healthy"}
        elif path == "/ready":
            ready = self.ready
            status, body = (200, {"status": "ready"}) if ready else (503, {"status": "not ready"})
        elif path == "/metrics":
            data, content_type = self._metrics_body()
            await self._respond(send, 200, data, content_type, head=method == "HEAD")
            return
        else:
            status, body = 404, {"status": "not found"}
        data = json.dumps(body).encode()
        await self._respond(send, status, data, content_type, head=method == "HEAD")

    @staticmethod
    async def _respond(
        send: _Send, status: int, data: bytes, content_type: str, *, head: bool
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(data)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if head else data})

    async def serve(
        self, *, task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; ``task_status.started`` gets the bound (host, port)."""
        try:
            from hypercorn.config import Config
        except ImportError:
            raise _missing_extra("OpsServer") from None
        config = Config()
        host = f"[{self.host}]" if ":" in self.host else self.host
        config.bind = [f"{host}:{self.port}"]
        config.accesslog = None
        # Probes are frequent; an idle connection should not be kept for long.
        config.keep_alive_timeout = 5
        if sniffio.current_async_library() != "trio":
            raise RuntimeError("OpsServer runs on trio (hypercorn's trio worker)")
        import trio
        from hypercorn.trio import serve

        async with trio.open_nursery() as nursery:
            # Our own shutdown trigger: hypercorn must not install signal handlers of its own
            # (the CLI's drain owns SIGTERM); cancelling this task stops it.
            binds: list[str] = await nursery.start(
                functools.partial(serve, self._asgi, config, shutdown_trigger=trio.sleep_forever)  # type: ignore[arg-type]
            )
            where = binds[0].rpartition("//")[2]
            bound_host, _, bound_port = where.rpartition(":")
            self.address = (bound_host.strip("[]"), int(bound_port))
            task_status.started(self.address)
