"""The OTLP/HTTP exporter path, against a local receiver on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from genesis_trio import Inbound
from genesis_trio.testing import Destination, FakeFreeSWITCH

SECRET = "Otlp-S3cret"


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append((self.path, self.headers.get("Content-Type", ""), body))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def provider(receiver: Receiver) -> Iterator[TracerProvider]:
    """A production-style set-up: batch processor, OTLP/HTTP exporter.

    Shut down before the receiver stops, even when the test fails.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-test"}))
    exporter = OTLPSpanExporter(endpoint=receiver.url, timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    try:
        yield provider
    finally:
        provider.shutdown()


@pytest.mark.trio
async def test_spans_reach_an_otlp_receiver(receiver: Receiver, provider: TracerProvider) -> None:
    async with FakeFreeSWITCH(password=SECRET).running() as fake:
        fake.add_destination("user/1001", Destination(answer_after=0))
        async with Inbound(fake.host, fake.port, SECRET, tracer_provider=provider) as client:
            await client.events("ALL")
            async with client.subscribe("CHANNEL_DESTROY", request=False) as destroyed:
                uuid = (await client.api("originate user/1001 &park")).split()[1]
                await client.api(f"uuid_kill {uuid}")
                await destroyed.receive()
    assert await anyio.to_thread.run_sync(provider.force_flush)

    assert receiver.requests
    names: set[str] = set()
    for path, content_type, body in receiver.requests:
        assert path == "/v1/traces"
        assert content_type == "application/x-protobuf"
        assert SECRET.encode() not in body
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}[
                "service.name"
            ]
            assert service == "otlp-test"
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "genesis_trio"
                names.update(span.name for span in scope_spans.spans)
    assert {
        "inbound_connect",
        "send_command",
        "process_event",
        "freeswitch.channel.create",
        "freeswitch.channel.hangup",
        "freeswitch.channel.destroy",
    } <= names
