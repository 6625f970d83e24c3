"""inbound_connect, send_command, process_event, consumer.start/stop through the fake switch."""

from __future__ import annotations

import anyio
import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace
from opentelemetry.trace import StatusCode

from genesis_trio import AuthenticationError, CommandError, Consumer, Event, Inbound
from genesis_trio.testing import FakeFreeSWITCH

from ._util import everything_recorded, parent_of, traced_inbound
from .conftest import Metrics, Recorded

SECRET = "S3cr3t-Pa55word"


@pytest.mark.trio
async def test_inbound_connect_is_a_child_of_the_callers_span(
    fake: FakeFreeSWITCH, recorded: Recorded
) -> None:
    tracer = recorded.provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        async with traced_inbound(fake, recorded):
            pass
    connect = recorded.one("inbound_connect")
    assert connect.parent is not None
    assert connect.parent.span_id == request.get_span_context().span_id
    assert dict(connect.attributes or {}) == {
        "net.peer.name": fake.host,
        "net.peer.port": fake.port,
    }
    auth = [s for s in recorded.spans("send_command") if parent_of(s, recorded.spans()) == connect]
    assert len(auth) == 1
    assert dict(auth[0].attributes or {}) == {
        "command.name": "auth",
        "command.reply": "+OK accepted",
    }


@pytest.mark.trio
async def test_send_command_records_name_and_reply_not_arguments(
    fake: FakeFreeSWITCH, recorded: Recorded, metrics: Metrics
) -> None:
    tracer = recorded.provider.get_tracer("test")
    async with traced_inbound(fake, recorded, metrics) as client:
        with tracer.start_as_current_span("handler") as handler:
            await client.api("uptime")
            with pytest.raises(CommandError):
                await client.api("nosuchcommand secret-argument")
            await client.send("event plain CHANNEL_ANSWER")
    commands = [
        s for s in recorded.spans("send_command") if parent_of(s, recorded.spans()) is not None
    ]
    by_parent = [
        s for s in commands if s.parent and s.parent.span_id == handler.get_span_context().span_id
    ]
    assert [s.attributes.get("command.name") if s.attributes else None for s in by_parent] == [
        "api",
        "api",
        "event",
    ]
    uptime, failing, event = by_parent
    assert uptime.attributes is not None
    assert uptime.attributes["command.reply"] == "+OK"
    assert uptime.attributes["command.api"] == "uptime"
    assert failing.status.status_code is StatusCode.ERROR
    assert failing.attributes is not None
    assert str(failing.attributes["command.reply"]).startswith("-ERR")
    assert event.attributes is not None
    assert event.attributes["command.reply"] == "+OK event listener enabled plain"
    assert "secret-argument" not in everything_recorded(recorded.spans())

    sent = {labels["command"]: value for labels, value in metrics.points("genesis.commands.sent")}
    assert sent["api"] == 2
    assert sent["auth"] == 1
    errors = metrics.points("genesis.commands.errors")
    assert ({"command": "api", "error": "err_reply"}, 1.0) in errors
    durations = {labels["command"] for labels, _ in metrics.points("genesis.commands.duration")}
    assert {"api", "auth", "event"} <= durations
    assert metrics.total("genesis.connections.active") == 0


@pytest.mark.trio
async def test_the_password_never_reaches_a_span(recorded: Recorded) -> None:
    async with FakeFreeSWITCH(password=SECRET).running() as fake:
        async with Inbound(fake.host, fake.port, SECRET, tracer_provider=recorded.provider) as c:
            await c.send(f"auth {SECRET}")  # a raw re-auth: the label is redacted too
        with pytest.raises(AuthenticationError):
            async with Inbound(
                fake.host, fake.port, SECRET + "-wrong", tracer_provider=recorded.provider
            ):
                pass
    assert len(recorded.spans("inbound_connect")) == 2
    failed = recorded.spans("inbound_connect")[1]
    assert failed.status.status_code is StatusCode.ERROR
    text = everything_recorded(recorded.spans())
    assert "auth" in text
    assert SECRET not in text


@pytest.mark.trio
async def test_process_event_flattens_every_header(
    fake: FakeFreeSWITCH, recorded: Recorded
) -> None:
    async with traced_inbound(fake, recorded) as c:
        await c.events("CUSTOM", "my::subclass")
        async with c.subscribe("my::subclass", request=False) as events:
            await fake.emit(
                fake.build_event(
                    "CUSTOM",
                    [("Channel-State", "CS_EXECUTE"), ("X-Twice", "one"), ("X-Twice", "two")],
                    subclass="my::subclass",
                )
            )
            received = await events.receive()
    span = recorded.one("process_event")
    attributes = dict(span.attributes or {})
    assert attributes["event.name"] == "CUSTOM"
    assert attributes["event.header.event_subclass"] == "my::subclass"
    assert attributes["event.header.channel_state"] == "CS_EXECUTE"
    assert attributes["event.header.x_twice"] == ("one", "two")
    for header in received.headers:
        assert f"event.header.{header.lower().replace('-', '_')}" in attributes
    assert "event.uuid" not in attributes  # no Unique-ID on this event


@pytest.mark.trio
async def test_process_event_carries_the_channel_uuid(
    fake: FakeFreeSWITCH, recorded: Recorded
) -> None:
    async with traced_inbound(fake, recorded) as c:
        await c.events("CHANNEL_ANSWER")
        async with c.subscribe("CHANNEL_ANSWER", request=False) as events:
            await fake.emit(
                fake.build_event(
                    "CHANNEL_ANSWER", [("Unique-ID", "u-1"), ("Channel-Call-UUID", "u-1")]
                )
            )
            await events.receive()
    attributes = dict(recorded.one("process_event").attributes or {})
    assert attributes["event.name"] == "CHANNEL_ANSWER"
    assert attributes["event.uuid"] == "u-1"
    answer = recorded.one("freeswitch.channel.answer")
    assert answer.parent is not None
    assert answer.parent.span_id == recorded.one("process_event").context.span_id


@pytest.mark.trio
async def test_consumer_start_and_stop(fake: FakeFreeSWITCH, recorded: Recorded) -> None:
    app = Consumer(fake.host, fake.port, "ClueCon", tracer_provider=recorded.provider)
    seen = anyio.Event()

    tracer = recorded.provider.get_tracer("test")

    @app.handle("CHANNEL_ANSWER")
    async def answered(event: Event) -> None:
        with tracer.start_as_current_span("user.handler"):
            seen.set()

    async with anyio.create_task_group() as task_group:
        await task_group.start(app.serve)
        start = recorded.one("consumer.start")
        assert dict(start.attributes or {}) == {
            "consumer.host": fake.host,
            "consumer.port": fake.port,
        }
        connect = recorded.one("inbound_connect")
        assert connect.parent is not None
        assert connect.parent.span_id == start.context.span_id
        subscribe = [
            s for s in recorded.spans("send_command") if parent_of(s, recorded.spans()) == start
        ]
        assert [s.attributes["command.name"] for s in subscribe if s.attributes] == ["event"]
        assert not recorded.spans("consumer.stop")
        await fake.emit(fake.build_event("CHANNEL_ANSWER", [("Unique-ID", "u-2")]))
        await seen.wait()
        task_group.cancel_scope.cancel()
    # The handler's span joins the call's trace (the event's), not consumer.start's.
    handler_span = recorded.one("user.handler")
    call_root = recorded.one("process_event")
    assert handler_span.context is not None
    assert call_root.context is not None
    assert handler_span.context.trace_id == call_root.context.trace_id
    assert handler_span.parent is not None
    assert handler_span.parent.span_id == call_root.context.span_id
    stop = recorded.one("consumer.stop")
    assert dict(stop.attributes or {}) == {"consumer.host": fake.host, "consumer.port": fake.port}
    assert stop.status.status_code is not StatusCode.ERROR
    # Whatever the teardown still sends (``exit``, if the socket is open) is its child.
    teardown = [
        s
        for s in recorded.spans("send_command")
        if s.start_time and stop.start_time and s.start_time >= stop.start_time
    ]
    assert all(parent_of(s, recorded.spans()) == stop for s in teardown)


@pytest.mark.trio
async def test_nothing_is_installed_without_an_sdk(fake: FakeFreeSWITCH) -> None:
    async with Inbound(
        fake.host,
        fake.port,
        "ClueCon",
        tracer_provider=otel_trace.NoOpTracerProvider(),
        meter_provider=otel_metrics.NoOpMeterProvider(),
    ) as client:
        assert client.connection.telemetry is None
        assert client.connection._event_hooks == []
        await client.api("uptime")


@pytest.mark.trio
async def test_metrics_alone_install_the_hook_without_spans(
    fake: FakeFreeSWITCH, metrics: Metrics
) -> None:
    async with Inbound(
        fake.host,
        fake.port,
        "ClueCon",
        tracer_provider=otel_trace.NoOpTracerProvider(),
        meter_provider=metrics.provider,
    ) as client:
        telemetry = client.connection.telemetry
        assert telemetry is not None
        assert telemetry.tracer is None
        await client.events("CHANNEL_CREATE")
        async with client.subscribe("CHANNEL_CREATE", request=False) as events:
            await fake.emit(fake.build_event("CHANNEL_CREATE", [("Unique-ID", "u-3")]))
            await events.receive()
    assert metrics.points("genesis.events.received") == [({"event.name": "CHANNEL_CREATE"}, 1.0)]
    assert metrics.total("genesis.events.without_sip_call_id") == 1
