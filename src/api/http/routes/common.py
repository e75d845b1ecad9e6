"""What several routers share: JSON reading, id parsing, list parameters, command answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute

from api.http.openapi import operation_id
from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.domain.values import OrderStatus, PaymentStatus
from ledger.errors import NotFound
from ledger.service import Done
from projections.orders.projection import order_row
from projections.orders.queries import order_view
from projections.paging import MAX_LIMIT
from projections.payments.projection import payment_row
from projections.payments.queries import payment_view


class _ExactJSONRequest(Request):
    """Reads JSON numbers with a fraction as ``Decimal``: ``1.00000000000000000001`` must be
    refused for its decimals, not rounded to ``1.0`` by a double on the way in. NaN and
    Infinity are not JSON, and a body that is not UTF-8 is malformed like any other."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = await self.body()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise json.JSONDecodeError("the body is not UTF-8", "", error.start) from None
            self._json = json.loads(text, parse_float=Decimal, parse_constant=_not_json)
        return self._json


def _not_json(constant: str) -> Any:
    raise json.JSONDecodeError(f"{constant} is not JSON", constant, 0)


class ExactJSONRoute(APIRoute):
    """The route class of every router: bodies are read by ``_ExactJSONRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(_ExactJSONRequest(request.scope, request.receive))

        return exact


def api_router(
    *, tags: list[str], prefix: str = "", route_class: type[APIRoute] = ExactJSONRoute
) -> APIRouter:
    """A router of the API. Its operations are named after their functions (``place_order``),
    as a generated client calls them: the router names them, since the app lists their routes
    as they are (``app.create_app``) rather than including the routers."""
    return APIRouter(
        prefix=prefix,
        tags=list[str | Enum](tags),
        route_class=route_class,
        generate_unique_id_function=operation_id,
    )


OrderStatusQuery = Annotated[str | None, Query(json_schema_extra={"enum": [*OrderStatus]})]
PaymentStatusQuery = Annotated[str | None, Query(json_schema_extra={"enum": [*PaymentStatus]})]
"""A list's ``status`` filter, documented as its enum; checked by the query (``check_choice``),
whose 422 names the choices."""
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(alias="startingAfter", max_length=64)]


def parse_id(value: str, kind: str) -> UUID:
    """A path id; one that is not even a UUID names nothing, so it is a 404 like any other.

    Raises: NotFound.
    """
    try:
        parsed = UUID(value)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != value.lower():  # ids are given as the API shows them
        raise NotFound(f"{kind} {value} not found")
    return parsed


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
