"""CUSTOM subclass spans, freeswitch.call.update, sip.call_id and trace-per-call."""

from __future__ import annotations

import pytest

from genesis_trio import Event, Inbound, tracing
from genesis_trio.testing import Destination, FakeFreeSWITCH

from ._util import parent_of, traced_inbound
from .conftest import Metrics, Recorded

CHANNEL = [
    ("Unique-ID", "leg-a"),
    ("Channel-Call-UUID", "leg-a"),
    ("Call-Direction", "inbound"),
    ("variable_sip_call_id", "abc123@198.51.100.7"),
    ("variable_sofia_profile_name", "internal"),
]

CUSTOM_CASES: list[tuple[str, list[tuple[str, str]], str, dict[str, object], list[str]]] = [
    (
        "sofia::transferor",
        [*CHANNEL, ("variable_sip_refer_to", "<sip:2000@pbx>")],
        "freeswitch.sofia.transfer",
        {"transfer.role": "transferor", "transfer.type": "blind", "sofia.profile": "internal"},
        ["transfer.initiated"],
    ),
    (
        "sofia::transferor",
        [*CHANNEL, ("variable_sip_refer_to", "<sip:2000@pbx?Replaces=xyz%3Bto-tag%3D1>")],
        "freeswitch.sofia.transfer",
        {"transfer.role": "transferor", "transfer.type": "attended"},
        ["transfer.initiated"],
    ),
    (
        "sofia::transferee",
        CHANNEL,
        "freeswitch.sofia.transfer",
        {"transfer.role": "transferee", "transfer.type": "attended"},
        ["transfer.initiated"],
    ),
    (
        "sofia::register",
        [
            ("profile-name", "internal"),
            ("from-user", "1000"),
            ("from-host", "example.com"),
            ("contact", "<sip:1000@192.0.2.10:5060>"),
            ("expires", "3600"),
        ],
        "freeswitch.sofia.register",
        {
            "register.aor": "1000@example.com",
            "register.action": "register",
            "sofia.profile": "internal",
        },
        [],
    ),
    (
        "sofia::gateway_state",
        [("Gateway", "carrier-1"), ("State", "REGED"), ("profile-name", "external")],
        "freeswitch.sofia.register",
        {
            "gateway.name": "carrier-1",
            "gateway.state": "REGED",
            "register.action": "gateway_state",
            "sofia.profile": "external",
        },
        [],
    ),
    ("sofia::reinvite", CHANNEL, "freeswitch.sofia.reinvite", {"sofia.profile": "internal"}, []),
    ("sofia::replaced", CHANNEL, "freeswitch.sofia.replaced", {"sofia.profile": "internal"}, []),
    (
        "callcenter::info",
        [
            ("CC-Queue", "support@default"),
            ("CC-Action", "members-count"),
            ("CC-Agent", "1001@default"),
            ("CC-Member-UUID", "member-1"),
            ("CC-Count", "3"),
            ("CC-Selection", "single_queue"),
        ],
        "freeswitch.callcenter.info",
        {
            "cc.queue": "support@default",
            "cc.action": "members-count",
            "cc.agent": "1001@default",
            "cc.member_uuid": "member-1",
            "cc.count": "3",
            "cc.selection": "single_queue",
        },
        [],
    ),
    (
        "conference::maintenance",
        [
            *CHANNEL,
            ("Conference-Name", "3000"),
            ("Conference-Profile-Name", "default"),
            ("Action", "add-member"),
            ("Member-ID", "7"),
        ],
        "freeswitch.conference.maintenance",
        {
            "conference.name": "3000",
            "conference.profile": "default",
            "conference.action": "add-member",
            "conference.member_id": "7",
        },
        [],
    ),
    (
        "conference::cdr",
        [("Conference-Name", "3000"), ("Conference-Profile-Name", "default")],
        "freeswitch.conference.cdr",
        {"conference.name": "3000", "conference.profile": "default"},
        [],
    ),
    (
        "valet_parking::info",
        [
            *CHANNEL,
            ("Valet-Lot-Name", "lot1"),
            ("Valet-Extension", "6001"),
            ("Action", "hold"),
            ("Bridge-To-UUID", "leg-b"),
        ],
        "freeswitch.valet.info",
        {
            "valet.lot": "lot1",
            "valet.extension": "6001",
            "valet.action": "hold",
            "bridge.to_uuid": "leg-b",
        },
        [],
    ),
]


async def deliver(fake: FakeFreeSWITCH, client: Inbound, *events: Event) -> None:
    """Send events and wait until the client has processed every one of them."""
    async with client.subscribe(request=False) as received:
        for event in events:
            await fake.emit(event)
        for _ in events:
            await received.receive()


@pytest.mark.trio
@pytest.mark.parametrize(
    ("subclass", "headers", "span_name", "expected", "event_names"),
    CUSTOM_CASES,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(CUSTOM_CASES)],
)
async def test_custom_subclass_span(
    fake: FakeFreeSWITCH,
    recorded: Recorded,
    subclass: str,
    headers: list[tuple[str, str]],
    span_name: str,
    expected: dict[str, object],
    event_names: list[str],
) -> None:
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        await deliver(fake, c, fake.build_event("CUSTOM", headers, subclass=subclass))
    span = recorded.one(span_name)
    attributes = dict(span.attributes or {})
    for key, value in expected.items():
        assert attributes[key] == value, key
    if ("Unique-ID", "leg-a") in headers:
        assert attributes["channel.uuid"] == "leg-a"
        assert attributes["sip.call_id"] == "abc123@198.51.100.7"
    assert [event.name for event in span.events] == event_names
    for event in span.events:
        assert dict(event.attributes or {}) == {
            "transfer.role": attributes["transfer.role"],
            "transfer.type": attributes["transfer.type"],
        }
    parent = parent_of(span, recorded.spans())
    assert parent is not None
    assert parent.name == "process_event"


@pytest.mark.trio
async def test_custom_opt_out(
    fake: FakeFreeSWITCH, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENESIS_TRACE_CUSTOM_SUBCLASSES", "0")
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        await deliver(
            fake,
            c,
            fake.build_event("CUSTOM", CHANNEL, subclass="sofia::transferor"),
            fake.build_event("CHANNEL_ANSWER", CHANNEL),
        )
    assert not [s for s in recorded.spans() if s.name.startswith("freeswitch.sofia.")]
    assert recorded.spans("freeswitch.channel.answer")  # the lifecycle processor still runs
    assert len(recorded.spans("process_event")) == 2


@pytest.mark.trio
async def test_call_update_span(fake: FakeFreeSWITCH, recorded: Recorded) -> None:
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        await deliver(
            fake,
            c,
            fake.build_event(
                "CALL_UPDATE",
                [
                    *CHANNEL,
                    ("Direction", "RECV"),
                    ("Bridged-To", "leg-b"),
                    ("Caller-Transfer-Source", "1795577039:uuid_br:leg-b"),
                ],
            ),
        )
    span = recorded.one("freeswitch.call.update")
    attributes = dict(span.attributes or {})
    assert attributes["bridged.to"] == "leg-b"
    assert attributes["caller.transfer_source"] == "1795577039:uuid_br:leg-b"
    assert attributes["channel.uuid"] == "leg-a"
    assert attributes["sip.call_id"] == "abc123@198.51.100.7"
    assert [e.name for e in span.events] == ["caller_id.mutated"]


@pytest.mark.trio
async def test_an_originated_call_joins_the_trace_that_created_it(
    fake: FakeFreeSWITCH, recorded: Recorded, metrics: Metrics
) -> None:
    fake.add_destination("user/1001", Destination(answer_after=0))
    tracer = recorded.provider.get_tracer("test")
    async with traced_inbound(fake, recorded, metrics) as c:
        await c.events("ALL")
        async with c.subscribe("CHANNEL_DESTROY", request=False) as destroyed:
            with tracer.start_as_current_span("http.request"):
                with tracing.channel_create(
                    "user/1001", has_variables=True, connection=c.connection
                ) as create:
                    variables = ",".join(f"{k}={v}" for k, v in create.trace_variables().items())
                    assert variables.startswith("genesis_traceparent=00-")
                    reply = await c.api(f"originate {{{variables}}}user/1001 &park")
                    uuid = reply.split()[1]
                    create.set("channel.uuid", uuid)
                await c.api(f"uuid_kill {uuid}")
            await destroyed.receive()

    create_span = recorded.one("channel.create")
    assert create_span.context is not None
    assert dict(create_span.attributes or {}) == {
        "channel.dial_path": "user/1001",
        "channel.has_variables": True,
        "channel.uuid": uuid,
    }
    channel_spans = [
        s
        for s in recorded.spans()
        if s.name.startswith("freeswitch.")
        and s.attributes
        and s.attributes["channel.uuid"] == uuid
    ]
    names = {s.name for s in channel_spans}
    assert {
        "freeswitch.channel.create",
        "freeswitch.channel.answer",
        "freeswitch.channel.hangup",
        "freeswitch.channel.hangup_complete",
        "freeswitch.channel.destroy",
    } <= names
    for span in channel_spans:
        assert span.context is not None
        assert span.context.trace_id == create_span.context.trace_id, span.name
        process_event = parent_of(span, recorded.spans())
        assert process_event is not None
        assert process_event.name == "process_event"
        assert process_event.parent is not None
        assert process_event.parent.span_id == create_span.context.span_id
        # The SIP leg's Call-ID is on every lifecycle span: the cross-system join key.
        assert span.attributes is not None
        assert "@" in str(span.attributes["sip.call_id"])
    assert metrics.total("genesis.events.without_sip_call_id") == 0


@pytest.mark.trio
async def test_a_call_we_did_not_originate_gets_its_own_trace(
    fake: FakeFreeSWITCH, recorded: Recorded
) -> None:
    fake.add_destination("user/1002", Destination(answer_after=0))
    tracer = recorded.provider.get_tracer("test")
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        async with c.subscribe("CHANNEL_DESTROY", request=False) as destroyed:
            with tracer.start_as_current_span("unrelated") as unrelated:
                uuid = (await c.api("originate user/1002 &park")).split()[1]
                await c.api(f"uuid_kill {uuid}")
            await destroyed.receive()
    channel_spans = [
        s
        for s in recorded.spans()
        if s.name.startswith("freeswitch.")
        and s.attributes
        and s.attributes["channel.uuid"] == uuid
    ]
    assert len(channel_spans) >= 5
    traces = {s.context.trace_id for s in channel_spans if s.context}
    assert len(traces) == 1
    assert traces != {unrelated.get_span_context().trace_id}
    # The call's root is its first event's process_event span.
    roots = [
        s
        for s in recorded.spans("process_event")
        if s.context and s.context.trace_id in traces and s.parent is None
    ]
    assert len(roots) == 1
    assert roots[0].attributes is not None
    assert roots[0].attributes["event.uuid"] == uuid


@pytest.mark.trio
async def test_bind_call_parents_a_calls_events_on_the_current_span(
    fake: FakeFreeSWITCH, recorded: Recorded
) -> None:
    tracer = recorded.provider.get_tracer("test")
    async with traced_inbound(fake, recorded) as c:
        await c.events("ALL")
        telemetry = c.connection.telemetry
        assert telemetry is not None
        with tracer.start_as_current_span("session") as session:
            telemetry.bind_call("leg-a")
        await deliver(fake, c, fake.build_event("CHANNEL_ANSWER", CHANNEL))
    process_event = recorded.one("process_event")
    assert process_event.parent is not None
    assert process_event.parent.span_id == session.get_span_context().span_id
    assert recorded.one("freeswitch.channel.answer").context is not None
