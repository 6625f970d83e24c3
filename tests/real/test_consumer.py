"""The Consumer against a real FreeSWITCH: decorated handlers, filters the switch applies,
and the CUSTOM subclasses real modules send (mod_conference, mod_valet_parking)."""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from genesis_trio import Consumer, Event, EventFormat, Inbound, filtrate
from real_switch import RealSwitch, unique_name

from ._calls import parked_call
from ._seen import Seen

pytestmark = pytest.mark.trio

DEADLINE = 20


def consumer_for(
    switch: RealSwitch, *, event_format: EventFormat = "plain", concurrent: bool = True
) -> Consumer:
    return Consumer(
        switch.host,
        switch.port,
        switch.password,
        event_format=event_format,
        concurrent=concurrent,
    )


@asynccontextmanager
async def serving(app: Consumer) -> AsyncIterator[Inbound]:
    """The consumer runs (connected and subscribed) for the block; yields its client."""
    async with trio.open_nursery() as nursery:
        client: Inbound = await nursery.start(app.serve)
        yield client
        nursery.cancel_scope.cancel()


async def b_leg_of(client: Inbound, a_leg: str) -> str:
    """The loopback b-leg (the one running the extension) of an a-leg we originated."""
    return (await client.api(f"uuid_getvar {a_leg} other_loopback_leg_uuid")).strip()


@pytest.mark.parametrize("event_format", ["plain", "json", "xml"])
async def test_handle_and_filtrate_on_real_calls(
    freeswitch: RealSwitch, event_format: EventFormat
) -> None:
    # Sequential handlers see their events in the switch's order.
    app = consumer_for(freeswitch, event_format=event_format, concurrent=False)
    answers, hangups, normal = Seen(), Seen(), Seen()
    app.handle("CHANNEL_ANSWER")(answers.handle)
    app.handle("CHANNEL_HANGUP_COMPLETE")(hangups.handle)

    @app.handle("CHANNEL_HANGUP_COMPLETE")
    @filtrate("Hangup-Cause", "NORMAL_CLEARING")
    @filtrate("Channel-Name", r"loopback/9002-a", regex=True)
    async def normal_a_legs(event: Event) -> None:
        normal.add(event)

    busy_uuid, normal_uuid = str(uuid_module.uuid4()), str(uuid_module.uuid4())
    async with serving(app), freeswitch.inbound() as control:
        with trio.fail_after(DEADLINE):
            async with parked_call(control, uuid=busy_uuid, cause="USER_BUSY"):
                pass
            await hangups.wait_for(lambda e: e.unique_id == busy_uuid)
            async with parked_call(control, uuid=normal_uuid):
                await answers.wait_for(lambda e: e.unique_id == normal_uuid)
            done = await normal.wait_for(lambda e: e.unique_id == normal_uuid)
    assert done.hangup_cause == "NORMAL_CLEARING"
    ours = {busy_uuid, normal_uuid}
    assert [e.unique_id for e in normal.events if e.unique_id in ours] == [normal_uuid]
    assert {e.unique_id for e in answers.events} >= ours
    assert {e.name for e in answers.events} == {"CHANNEL_ANSWER"}


async def test_exact_filters_are_applied_by_the_switch(freeswitch: RealSwitch) -> None:
    """When every handler has an exact filter the switch itself drops the rest: the
    consumer's connection never receives a ``drop`` event (seen with a raw subscription)."""
    subclass = f"genesis::{unique_name()}"
    app = consumer_for(freeswitch)
    kept = Seen()

    @app.handle(subclass)
    @filtrate("X-Kind", "keep")
    async def keep(event: Event) -> None:
        kept.add(event)

    async with serving(app) as client, freeswitch.inbound() as sender:
        with trio.fail_after(DEADLINE):
            async with client.subscribe(request=False) as everything:
                for _ in range(3):
                    await sender.sendevent("CUSTOM", {"Event-Subclass": subclass, "X-Kind": "drop"})
                await sender.sendevent("CUSTOM", {"Event-Subclass": subclass, "X-Kind": "keep"})
                first = await everything.receive()
                await kept.wait_for(lambda e: True)
    assert (first.subclass, first["X-Kind"]) == (subclass, "keep")
    assert [e["X-Kind"] for e in kept.events] == ["keep"]


async def test_conference_maintenance_from_a_real_conference(freeswitch: RealSwitch) -> None:
    app = consumer_for(freeswitch)
    seen = Seen()
    app.handle("conference::maintenance")(seen.handle)
    async with serving(app), freeswitch.inbound() as control:
        with trio.fail_after(DEADLINE):
            async with parked_call(control, "9008") as a_leg:
                member = await b_leg_of(control, a_leg)
                added = await seen.wait_for(
                    lambda e: e.get("Action") == "add-member" and e.unique_id == member
                )
                listing = await control.api("conference test_room list")
            removed = await seen.wait_for(
                lambda e: e.get("Action") == "del-member" and e.unique_id == member
            )
    assert member in listing  # the switch's own view of the room
    for event in (added, removed):
        assert event.name == "CUSTOM"
        assert event.subclass == "conference::maintenance"
        assert event["Conference-Name"] == "test_room"
        assert event["Conference-Profile-Name"] == "default"
        assert event["Member-ID"] == added["Member-ID"]


async def test_valet_parking_info_from_a_real_lot(freeswitch: RealSwitch) -> None:
    app = consumer_for(freeswitch, event_format="json")
    seen = Seen()
    app.handle("valet_parking::info")(seen.handle)
    async with serving(app), freeswitch.inbound() as control:
        with trio.fail_after(DEADLINE):
            async with parked_call(control, "9009") as a_leg:
                parked = await b_leg_of(control, a_leg)
                held = await seen.wait_for(
                    lambda e: e.get("Action") == "hold" and e.unique_id == parked
                )
                lot = await control.api("valet_info lot1")
            left = await seen.wait_for(
                lambda e: e.get("Action") == "exit" and e.unique_id == parked
            )
    assert held.subclass == left.subclass == "valet_parking::info"
    assert held["Valet-Lot-Name"] == left["Valet-Lot-Name"] == "lot1"
    slot = held["Valet-Extension"]
    assert slot == left["Valet-Extension"]
    assert held["variable_other_loopback_leg_uuid"] == a_leg
    # The switch's own view of the lot holds our call in that slot.
    assert parked in lot
    assert slot in lot
