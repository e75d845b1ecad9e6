"""Payments: the client opens one per order; parties and staff read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from api.http import schemas
from api.http.deps import CallerDep, LedgerDep, ReadModelsDep, fresh
from api.http.routes.common import (
    Cursor,
    Limit,
    PaymentStatusQuery,
    api_router,
    parse_id,
    payment_answer,
    tag,
)
from api.http.routes.orders import visible_order
from ledger import access
from ledger.domain.payment import CARD, CASHPLUS
from ledger.errors import NotFound
from projections.payments.queries import payment_view

router = api_router(prefix="/v1", tags=["payments"])
Fresh = Depends(fresh("payments"))
FreshOrder = Depends(fresh("orders", "payments"))
FLOWS: dict[str, tuple[str, str]] = {
    CARD: (
        "hosted_form",
        "The client pays by card on the gateway's hosted form (the payment's"
        " checkout.paymentUrl) and is sent back to the checkout return pages.",
    ),
    CASHPLUS: (
        "cash_code",
        "The client gets a code (the payment's cashplus.code) and pays in cash at a CashPlus"
        " agency; the payment stays pending until the gateway reports the cash paid.",
    ),
}
"""Each method's flow, as ``GET /v1/payment-methods`` tells a front end which to show."""


@router.get("/payment-methods", response_model=schemas.PaymentMethods)
def payment_methods(caller: CallerDep, ledger: LedgerDep) -> dict[str, Any]:
    """What the configured gateway takes, in the order to offer them, with each method's
    flow and how long its payment may stay unpaid. Anyone signed in may ask."""
    terms = ledger.payment_terms
    return {
        "data": [
            {
                "method": method,
                "flow": FLOWS[method][0],
                "expiresInMinutes": int(terms.window(method).total_seconds()) // 60,
                "description": FLOWS[method][1],
            }
            for method in terms.methods
        ]
    }


@router.post("/orders/{order_id}/payments", status_code=201, response_model=schemas.Payment)
async def create_payment(
    order_id: str,
    body: schemas.PaymentIn,
    caller: CallerDep,
    ledger: LedgerDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Client starts paying a pending order (one payment per order: a second is 409). The
    client's address goes to the gateway, which uses it against fraud."""
    client_ip = request.client.host if request.client else None
    oid = parse_id(order_id, "order")
    done = await ledger.perform(
        lambda: ledger.create_payment(caller, oid, body.payment_method, client_ip)
    )
    response.headers["Location"] = f"/v1/payments/{done.aggregate.id}"
    return payment_answer(response, done.aggregate, done.position)


@router.post("/payments/{payment_id}/sync", response_model=schemas.Payment)
def sync_payment(
    payment_id: str, caller: CallerDep, ledger: LedgerDep, response: Response
) -> dict[str, Any]:
    """Support asks the gateway again and records what it says (as a webhook would). The
    position is the head of the log after it: at or after whatever the sync recorded."""
    payment = ledger.sync_payment(caller, parse_id(payment_id, "payment"))
    return payment_answer(response, payment, ledger.recorder.max_notification_id() or 0)


@router.post("/payments/{payment_id}/refunds/confirm", response_model=schemas.Payment)
def confirm_refund(
    payment_id: str,
    body: schemas.RefundConfirmationIn,
    caller: CallerDep,
    ledger: LedgerDep,
    response: Response,
) -> dict[str, Any]:
    """Support confirms the oldest requested refund was made at the gateway (YouCanPay has
    no refund API), quoting the gateway's reference."""
    done = ledger.confirm_refund(caller, parse_id(payment_id, "payment"), body.reference)
    return payment_answer(response, done.aggregate, done.position)


@router.get("/orders/{order_id}/payment", response_model=schemas.Payment, dependencies=[FreshOrder])
def order_payment(
    order_id: str, caller: CallerDep, models: ReadModelsDep, response: Response
) -> dict[str, Any]:
    oid = str(parse_id(order_id, "order"))
    visible_order(models, caller, oid)
    payment = models.payments.of_order(oid)
    if payment is None:
        raise NotFound(f"order {oid} has no payment yet")
    tag(response, payment["version"])
    return payment


@router.get("/payments", response_model=schemas.Page[schemas.Payment], dependencies=[Fresh])
def list_payments(
    caller: CallerDep,
    models: ReadModelsDep,
    status: PaymentStatusQuery = None,
    order_id: Annotated[str | None, Query(alias="orderId", max_length=64)] = None,
    transaction_id: Annotated[str | None, Query(alias="transactionId", max_length=255)] = None,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    """The payments of the caller's orders, newest first (staff: all)."""
    page = models.payments.page(
        status=status,
        order_id=order_id,
        transaction_id=transaction_id,
        party_id=None if caller.is_staff_reader else caller.id,
        limit=limit,
        starting_after=starting_after,
    )
    return page.as_api()


@router.get("/payments/{payment_id}", response_model=schemas.Payment, dependencies=[Fresh])
def get_payment(
    payment_id: str, caller: CallerDep, models: ReadModelsDep, response: Response
) -> dict[str, Any]:
    pid = str(parse_id(payment_id, "payment"))
    row = models.payments.row(pid)
    if row is None or not access.may_read(caller, row["client_id"], row["freelancer_id"]):
        raise NotFound(f"payment {pid} not found")
    tag(response, row["version"])
    return payment_view(row)
