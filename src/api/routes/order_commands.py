"""``POST /v1/orders/{id}/…``: every step of an order's life, each answering the order.

Each command answers 200 with the order as saved (``ETag`` its version, ``X-Ledger-Position``
its last event), 409 when the order's state does not allow it now, 403 when it is not this
caller's to take, 404 when the caller has no relation to the order, 412 on an ``If-Match``
that is not the current version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response

from api import schemas
from api.deps import CallerDep, ExpectedVersion, LedgerDep
from api.routes.common import ExactJSONRoute, done_order, parse_id
from ledger.domain.order import Order
from ledger.domain.values import CancelReason
from ledger.service import Done, LedgerApp

router = APIRouter(
    prefix="/v1/orders/{order_id}", tags=["order commands"], route_class=ExactJSONRoute
)
Answer = dict[str, Any]
Bodyless = Callable[[LedgerApp], Callable[..., Done[Order]]]


def _bodyless(path: str, command: Bodyless, summary: str) -> None:
    """Register a command that needs nothing but the order (and the caller)."""

    def endpoint(
        order_id: str,
        caller: CallerDep,
        ledger: LedgerDep,
        expected: ExpectedVersion,
        response: Response,
    ) -> Answer:
        done = command(ledger)(caller, parse_id(order_id, "order"), expected)
        return done_order(response, done)

    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        response_model=schemas.Order,
        summary=summary,
        name=path.strip("/").replace("/", "_").replace("-", "_"),
    )


_bodyless("/accept", lambda ledger: ledger.accept_order, "Freelancer confirms the order")
_bodyless("/complete", lambda ledger: ledger.complete_order, "Client accepts the delivery")
_bodyless(
    "/cancellation-requests/accept",
    lambda ledger: ledger.accept_cancellation,
    "The other party agrees to cancel (refunding what was paid)",
)
_bodyless(
    "/cancellation-requests/decline",
    lambda ledger: ledger.decline_cancellation,
    "The other party refuses to cancel",
)
_bodyless(
    "/cancellation-requests/withdraw",
    lambda ledger: ledger.withdraw_cancellation,
    "The requester takes the request back",
)


@router.post("/requirements", response_model=schemas.Order)
def submit_requirements(
    order_id: str,
    body: schemas.RequirementsIn,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> Answer:
    """Client tells the freelancer what they need."""
    oid = parse_id(order_id, "order")
    return done_order(response, ledger.submit_requirements(caller, oid, body.text, expected))


@router.post("/deliver", response_model=schemas.Order)
def deliver(
    order_id: str,
    body: schemas.DeliveryIn,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> Answer:
    """Freelancer delivers (which also confirms an order not yet accepted)."""
    oid = parse_id(order_id, "order")
    return done_order(response, ledger.deliver_order(caller, oid, body.message, expected))


@router.post("/request-revision", response_model=schemas.Order)
def request_revision(
    order_id: str,
    body: schemas.ReasonIn,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> Answer:
    """Client asks for changes, within the revisions the package allows."""
    oid = parse_id(order_id, "order")
    return done_order(response, ledger.request_revision(caller, oid, body.reason, expected))


@router.post("/cancellation-requests", response_model=schemas.Order)
def request_cancellation(
    order_id: str,
    body: schemas.ReasonIn,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> Answer:
    """Either party proposes to cancel by mutual agreement."""
    oid = parse_id(order_id, "order")
    return done_order(response, ledger.request_cancellation(caller, oid, body.reason, expected))


@router.post("/cancel", response_model=schemas.Order)
def cancel(
    order_id: str,
    body: schemas.CancelIn,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> Answer:
    """Client withdraws a pending order; support or admin cancel for a policy violation."""
    oid = parse_id(order_id, "order")
    reason = CancelReason(body.reason)
    return done_order(response, ledger.cancel_order(caller, oid, reason, body.note, expected))


@router.post("/disputes", response_model=schemas.Order)
def open_dispute(
    order_id: str,
    body: schemas.ReasonIn,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> Answer:
    """Either party disputes an order in progress; support resolves it."""
    oid = parse_id(order_id, "order")
    return done_order(response, ledger.open_dispute(caller, oid, body.reason, expected))


@router.post("/disputes/resolve", response_model=schemas.Order)
def resolve_dispute(
    order_id: str,
    body: schemas.ResolutionIn,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> Answer:
    """Support releases the money, refunds it, or splits it (``refundAmount`` back)."""
    oid = parse_id(order_id, "order")
    done = ledger.resolve_dispute(caller, oid, body.outcome, body.refund_amount, expected)
    return done_order(response, done)


@router.post("/review", response_model=schemas.Order)
def review(
    order_id: str,
    body: schemas.ReviewIn,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> Answer:
    """Client rates the completed order, once."""
    oid = parse_id(order_id, "order")
    done = ledger.review_order(caller, oid, body.rating, body.comment, expected)
    return done_order(response, done)
