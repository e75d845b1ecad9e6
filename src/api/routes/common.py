"""What several routers share: id parsing, list parameters, and command answers."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Query, Response

from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.errors import NotFound
from ledger.service import Done
from projections.models.orders import order_row
from projections.models.payments import payment_row
from projections.queries import MAX_LIMIT, order_view, payment_view

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(alias="startingAfter", max_length=64)]


def parse_id(value: str, kind: str) -> UUID:
    """A path id; one that is not even a UUID names nothing, so it is a 404 like any other.

    Raises: NotFound.
    """
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"{kind} {value} not found") from None


def tag(response: Response, version: int | None, position: int | None = None) -> None:
    """``ETag`` (orders and payments) and, for a command, ``X-Ledger-Position``."""
    if version is not None:
        response.headers["ETag"] = f'"{version}"'
    if position is not None:
        response.headers["X-Ledger-Position"] = str(position)


def order_answer(response: Response, order: Order, position: int | None = None) -> dict[str, Any]:
    """An order just saved (or loaded at a version), shown exactly as the read model shows it."""
    tag(response, order.version, position)
    return order_view(order_row(order))


def done_order(response: Response, done: Done[Order]) -> dict[str, Any]:
    return order_answer(response, done.aggregate, done.position)


def payment_answer(
    response: Response, payment: Payment, position: int | None = None
) -> dict[str, Any]:
    tag(response, payment.version, position)
    return payment_view(payment_row(payment))
