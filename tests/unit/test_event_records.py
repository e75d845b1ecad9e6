"""An event as the audit feed and timelines show it: envelope lifted out, data JSON-ready."""

from __future__ import annotations

import json

from tests.conftest import FakeClock

from ledger.actors import Actor, Caller
from ledger.domain.values import Package
from ledger.service import LedgerApp
from projections.events import event_record


def test_an_order_placed_reads_as_plain_json(memory_app: LedgerApp, clock: FakeClock) -> None:
    gig = memory_app.create_gig(Caller("ana"), "Logo", [Package("basic", 1_050, 2, 1, "A")])
    placed = memory_app.place_order(Caller("cara", request_id="req-1"), gig.aggregate.id, "basic")
    [notification] = memory_app.notification_log.select(start=placed.position, limit=1)
    record = event_record(placed.position, memory_app.mapper.to_domain_event(notification))
    assert json.loads(json.dumps(record)) == record, "nothing but JSON types"
    assert {k: record[k] for k in ("position", "stream", "version", "type", "at")} == {
        "position": placed.position,
        "stream": str(placed.aggregate.id),
        "version": 1,
        "type": "OrderPlaced",
        "at": "2026-01-05T09:00:00.000000Z",
    }
    data = record["data"]
    assert data["package"]["price"] == 1_050, "amounts as stored, in centimes"
    assert data["actor"] == {"id": "cara", "role": "client", "request_id": "req-1"}
    assert data["gig_id"] == str(gig.aggregate.id)
    assert not {"originator_id", "originator_version", "timestamp"} & set(data)


def test_an_actor_and_a_package_are_stored_as_their_fields_in_order(
    memory_app: LedgerApp,
) -> None:
    """The stored form is what the audit chain hashes and every replay reads: the mapping of
    an actor's and a package's fields, in their declared order, and nothing else."""
    gig = memory_app.create_gig(Caller("ana"), "Logo", [Package("basic", 1_050, 2, 1, "A")])
    placed = memory_app.place_order(Caller("cara", request_id="req-1"), gig.aggregate.id, "basic")
    [notification] = memory_app.notification_log.select(start=placed.position, limit=1)
    state = notification.state.decode()
    assert (
        '"package":{"_type_":"package","_data_":{"package_id":"basic","price":1050,'
        '"delivery_days":2,"revisions":1,"description":"A"}}'
    ) in state
    assert (
        '"actor":{"_type_":"actor","_data_":{"id":"cara","role":"client","request_id":"req-1"}}'
    ) in state
    event = memory_app.mapper.to_domain_event(notification)
    assert event.package == Package("basic", 1_050, 2, 1, "A")
    assert event.actor == Actor("cara", "client", "req-1")
