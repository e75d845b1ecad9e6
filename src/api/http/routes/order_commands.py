"""``POST /v1/orders/{id}/…``: every step of an order's life, each answering the order.

Each command answers 200 with the order as saved (``ETag`` its version, ``X-Ledger-Position``
its last event), 409 when the order's state does not allow it now, 403 when it is not this
caller's to take, 404 when the caller has no relation to the order, 412 on an ``If-Match``
that is not the current version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Response

from api.http import schemas
from api.http.deps import CallerDep, ExpectedVersion, LedgerDep
from api.http.routes.common import api_router, done_order, parse_id
from ledger.actors import Caller
from ledger.domain.order import Order
from ledger.domain.values import CancelReason
from ledger.service import Done, LedgerApp

router = api_router(prefix="/v1/orders/{order_id}", tags=["order commands"])
Answer = dict[str, Any]
Bodyless = Callable[[LedgerApp], Callable[..., Done[Order]]]


@dataclass(frozen=True)
class OnOrder:
    """What every order command needs: who asks, the ledger, which order, which version."""

    caller: Caller
    ledger: LedgerApp
    order_id: UUID
    expected: int | None
    response: Response

    async def run(self, command: Callable[[], Done[Order]]) -> Answer:
        """Perform ``command`` on the event loop (``LedgerApp.perform``) and answer it."""
        return done_order(self.response, await self.ledger.perform(command))


async def _on_order(
    order_id: str,
    caller: CallerDep,
    ledger: LedgerDep,
    expected: ExpectedVersion,
    response: Response,
) -> OnOrder:
    return OnOrder(caller, ledger, parse_id(order_id, "order"), expected, response)


OnOrderDep = Annotated[OnOrder, Depends(_on_order)]


def _bodyless(path: str, command: Bodyless, summary: str) -> None:
    """Register a command that needs nothing but the order (and the caller)."""

    async def endpoint(on: OnOrderDep) -> Answer:
        return await on.run(lambda: command(on.ledger)(on.caller, on.order_id, on.expected))

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
    "/extensions/accept",
    lambda ledger: ledger.accept_extension,
    "Client agrees to the extension: dueAt moves by its days",
)
_bodyless(
    "/extensions/decline",
    lambda ledger: ledger.decline_extension,
    "Client refuses the extension: dueAt stays",
)
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
async def submit_requirements(body: schemas.RequirementsIn, on: OnOrderDep) -> Answer:
    """Client tells the freelancer what they need."""
    return await on.run(
        lambda: on.ledger.submit_requirements(on.caller, on.order_id, body.text, on.expected)
    )


@router.post("/deliver", response_model=schemas.Order)
async def deliver(body: schemas.DeliveryIn, on: OnOrderDep) -> Answer:
    """Freelancer delivers (which also confirms an order not yet accepted)."""
    return await on.run(
        lambda: on.ledger.deliver_order(on.caller, on.order_id, body.message, on.expected)
    )


@router.post("/request-revision", response_model=schemas.Order)
async def request_revision(body: schemas.ReasonIn, on: OnOrderDep) -> Answer:
    """Client asks for changes, within the revisions the package allows."""
    return await on.run(
        lambda: on.ledger.request_revision(on.caller, on.order_id, body.reason, on.expected)
    )


@router.post("/extensions", response_model=schemas.Order)
async def request_extension(body: schemas.ExtensionIn, on: OnOrderDep) -> Answer:
    """Freelancer asks for more days to deliver; the client accepts or declines."""
    return await on.run(
        lambda: on.ledger.request_extension(
            on.caller, on.order_id, body.days, body.reason, on.expected
        )
    )


@router.post("/cancellation-requests", response_model=schemas.Order)
async def request_cancellation(body: schemas.ReasonIn, on: OnOrderDep) -> Answer:
    """Either party proposes to cancel by mutual agreement."""
    return await on.run(
        lambda: on.ledger.request_cancellation(on.caller, on.order_id, body.reason, on.expected)
    )


@router.post("/cancel", response_model=schemas.Order)
async def cancel(body: schemas.CancelIn, on: OnOrderDep) -> Answer:
    """Client withdraws a pending order; support or admin cancel for a policy violation."""
    reason = CancelReason(body.reason)
    return await on.run(
        lambda: on.ledger.cancel_order(on.caller, on.order_id, reason, body.note, on.expected)
    )


@router.post("/disputes", response_model=schemas.Order)
async def open_dispute(body: schemas.ReasonIn, on: OnOrderDep) -> Answer:
    """Either party disputes an order in progress; support resolves it."""
    return await on.run(
        lambda: on.ledger.open_dispute(on.caller, on.order_id, body.reason, on.expected)
    )


@router.post("/disputes/resolve", response_model=schemas.Order)
async def resolve_dispute(body: schemas.ResolutionIn, on: OnOrderDep) -> Answer:
    """Support releases the money, refunds it, or splits it (``refundAmount`` back)."""
    return await on.run(
        lambda: on.ledger.resolve_dispute(
            on.caller, on.order_id, body.outcome, body.refund_amount, on.expected
        )
    )


@router.post("/review", response_model=schemas.Order)
async def review(body: schemas.ReviewIn, on: OnOrderDep) -> Answer:
    """Client rates the completed order, once."""
    return await on.run(
        lambda: on.ledger.review_order(
            on.caller, on.order_id, body.rating, body.comment, on.expected
        )
    )
