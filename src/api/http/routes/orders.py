"""``/v1/orders``: placing orders and reading them (the commands are in ``order_commands``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from pydantic import AwareDatetime

from api.http import schemas
from api.http.deps import CallerDep, LedgerDep, NewId, ReadModelsDep, fresh
from api.http.routes.common import (
    Cursor,
    Limit,
    OrderStatusQuery,
    api_router,
    done_order,
    order_answer,
    parse_id,
    tag,
)
from ledger import access
from ledger.actors import Caller
from ledger.errors import Forbidden, NotFound
from projections.db import Row
from projections.orders.queries import order_view
from projections.read_models import ReadModels

router = api_router(prefix="/v1/orders", tags=["orders"])
Fresh = Depends(fresh("orders"))


@router.post("", status_code=201, response_model=schemas.Order)
async def place_order(
    body: schemas.OrderIn,
    caller: CallerDep,
    ledger: LedgerDep,
    new_id: NewId,
    response: Response,
) -> dict[str, Any]:
    """Order a package of a gig: ``pending``, its total the package price, awaiting payment."""
    try:
        gig_id = parse_id(body.gig_id, "gig")
    except NotFound as error:  # the body names it: say which field
        raise NotFound(f"gig {body.gig_id} not found") from error
    done = await ledger.perform(
        lambda: ledger.place_order(caller, gig_id, body.package_id, body.requirements, new_id)
    )
    response.headers["Location"] = f"/v1/orders/{done.aggregate.id}"
    return done_order(response, done)


@router.get("", response_model=schemas.Page[schemas.Order], dependencies=[Fresh])
def list_orders(
    caller: CallerDep,
    models: ReadModelsDep,
    status: OrderStatusQuery = None,
    as_: Annotated[Literal["client", "freelancer"] | None, Query(alias="as")] = None,
    user_id: Annotated[str | None, Query(alias="userId", max_length=255)] = None,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    """The caller's orders, newest first (staff: everyone's, optionally one client's)."""
    if user_id is not None and not caller.is_staff_reader:
        raise Forbidden("only support, auditors and admins may filter by userId")
    party = None if caller.is_staff_reader or as_ else caller.id
    page = models.orders.page(
        status=status,
        client_id=caller.id if as_ == "client" else user_id,
        freelancer_id=caller.id if as_ == "freelancer" else None,
        party_id=party,
        limit=limit,
        starting_after=starting_after,
    )
    return page.as_api()


@router.get("/{order_id}", response_model=schemas.Order, dependencies=[Fresh])
def get_order(
    order_id: str,
    caller: CallerDep,
    ledger: LedgerDep,
    models: ReadModelsDep,
    response: Response,
    version: Annotated[int | None, Query(ge=1, le=10**6)] = None,
    as_of: Annotated[AwareDatetime | None, Query(alias="asOf")] = None,
) -> dict[str, Any]:
    """The order now (from the read model), or replayed from its events at ``version`` or
    at the moment ``asOf``."""
    oid = parse_id(order_id, "order")
    if version is not None or as_of is not None:
        return order_answer(response, ledger.get_order(caller, oid, version, as_of))
    row = visible_order(models, caller, str(oid))
    tag(response, row["version"])
    return order_view(row)


@router.get("/{order_id}/history", response_model=schemas.History, dependencies=[Fresh])
def order_history(
    order_id: str,
    caller: CallerDep,
    models: ReadModelsDep,
    after: Annotated[int, Query(ge=0, le=10**6)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Every status and stage the order went through, oldest first, with who and when:
    the entries after the order's version ``after``; continue from ``nextAfter`` until it
    is ``null``. Paged by version, not ``startingAfter``: the entries have no id, and the
    read model is keyed by the order's version (``OrderQueries.history_page``)."""
    oid = str(parse_id(order_id, "order"))
    visible_order(models, caller, oid)
    return models.orders.history_page(oid, after, limit)


def visible_order(models: ReadModels, caller: Caller, order_id: str) -> Row:
    """The order's row, if the caller may see it.

    Raises: NotFound, for unknown orders and orders that are not the caller's alike.
    """
    row = models.orders.row(order_id)
    if row is None or not access.may_read(caller, row["user_id"], row["freelancer_id"]):
        raise NotFound(f"order {order_id} not found")
    return row
