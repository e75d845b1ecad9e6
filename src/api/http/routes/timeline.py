"""``GET /v1/orders/{id}/timeline``: every event of an order and of its payment, oldest first,
with who did it and the order's status and stage after it (support reconstructing a dispute).

It reads the events themselves (``LedgerApp.order_timeline``), not a read model, so it is
always as current as the store and needs no ``X-Ledger-Min-Position`` wait.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.http import schemas
from api.http.deps import CallerDep, LedgerDep
from api.http.routes.common import ExactJSONRoute, parse_id
from ledger.service import TimelineEntry
from projections.events import event_record

router = APIRouter(prefix="/v1/orders", tags=["orders"], route_class=ExactJSONRoute)


@router.get("/{order_id}/timeline", response_model=schemas.Timeline)
def order_timeline(order_id: str, caller: CallerDep, ledger: LedgerDep) -> dict[str, Any]:
    """The order's and its payment's events by position (parties, support, auditors,
    admins; anyone else is told the order does not exist)."""
    timeline = ledger.order_timeline(caller, parse_id(order_id, "order"))
    return {"data": [timeline_record(entry) for entry in timeline.entries]}


def timeline_record(entry: TimelineEntry) -> dict[str, Any]:
    """``{"position", "stream", "version", "type", "at", "actor", "data", "state"}``."""
    return {
        **event_record(entry.position, entry.event),
        "actor": {"id": entry.actor.id, "role": entry.actor.role},
        "state": {"status": str(entry.status), "stage": str(entry.stage)},
    }
