"""The raw event log and its tamper-evident chain (auditors, admins; support read-only).

Both read the event store itself, not a read model, so they need no
``X-Ledger-Min-Position``: the feed is as fresh as the store, and verification recomputes
the chain from the stored bytes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from api.http import schemas
from api.http.deps import LedgerDep, ReadModelsDep, StaffReaderDep
from api.http.routes.common import api_router
from projections.audit.verify import MAX_FEED, event_page, verify_chain

router = api_router(prefix="/v1/audit", tags=["audit"])


@router.get("/events", response_model=schemas.AuditEvents)
def events(
    _: StaffReaderDep,
    ledger: LedgerDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_FEED)] = 100,
) -> dict[str, Any]:
    """The event log in order, after ``after``; continue from ``nextAfter``."""
    return event_page(ledger, after, limit)


@router.get("/verify", response_model=schemas.Verification)
def verify(_: StaffReaderDep, ledger: LedgerDep, models: ReadModelsDep) -> dict[str, Any]:
    """Recompute the chain from the raw store up to its last link; ``firstMismatch`` names
    the first event changed, removed or slipped in since it was chained."""
    return verify_chain(ledger, models.db).as_api()
