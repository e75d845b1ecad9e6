"""An event as the audit feed and timelines show it: envelope lifted out, data JSON-ready."""

from __future__ import annotations

import json

from tests.conftest import FakeClock

from ledger.actors import Caller
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
