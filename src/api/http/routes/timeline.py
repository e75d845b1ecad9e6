"""``GET /v1/orders/{id}/timeline``: every event of an order and of its payment, oldest first,
with who did it and the order's status and stage after it (support reconstructing a dispute).

It reads the events themselves (``LedgerApp.order_timeline``), not a read model, so it is
always as current as the store and needs no ``X-Ledger-Min-Position`` wait.

Paged by log position as ``GET /v1/audit/events`` is (``after``, ``limit``, ``nextAfter``):
the position orders the order's and its payment's events together and every entry shows it.
Unlike the feed, which is a tail to follow, a timeline page says where the story ends:
``nextAfter`` is ``null`` once the page reaches the last event.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from api.http import schemas
from api.http.deps import CallerDep, LedgerDep
from api.http.routes.common import api_router, parse_id
from ledger.service import TimelineEntry
from projections.events import event_record

router = api_router(prefix="/v1/orders", tags=["orders"])


MAX_PAGE = 500


@router.get("/{order_id}/timeline", response_model=schemas.Timeline)
def order_timeline(
    order_id: str,
    caller: CallerDep,
    ledger: LedgerDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """The order's and its payment's events by position, after ``after`` (parties,
    support, auditors, admins; anyone else is told the order does not exist); continue
    from ``nextAfter`` until it is ``null``."""
    timeline = ledger.order_timeline(caller, parse_id(order_id, "order"), after, limit)
    data = [timeline_record(entry) for entry in timeline.entries]
    return {"data": data, "nextAfter": timeline.next_after}


def timeline_record(entry: TimelineEntry) -> dict[str, Any]:
    """``{"position", "stream", "version", "type", "at", "actor", "data", "state"}``."""
    return {
        **event_record(entry.position, entry.event),
        "actor": {"id": entry.actor.id, "role": entry.actor.role},
        "state": {"status": str(entry.status), "stage": str(entry.stage)},
    }
