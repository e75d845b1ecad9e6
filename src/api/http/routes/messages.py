"""docs/api.md "Messages": an order's conversation, for its parties and staff.

Posting is a command on the order's ``Conversation`` (who wrote it, in which capacity, is
in its event); the list reads the ``messages`` read model, oldest first, and honours
``X-Ledger-Min-Position``. A stranger is answered 404, as for the order itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Response

from api.http import schemas
from api.http.deps import CallerDep, LedgerDep, NewId, ReadModelsDep, fresh
from api.http.routes.common import Cursor, Limit, api_router, parse_id, tag
from api.http.routes.orders import visible_order
from projections.messages.queries import message_answer

router = api_router(prefix="/v1/orders/{order_id}", tags=["messages"])
Fresh = Depends(fresh("messages", "orders"))


@router.post("/messages", status_code=201, response_model=schemas.Message)
def post_message(
    order_id: str,
    body: schemas.MessageIn,
    caller: CallerDep,
    ledger: LedgerDep,
    new_id: NewId,
    response: Response,
) -> dict[str, Any]:
    """Write to the other party (or, as support or an admin, to both); the other party is
    notified. A completed or cancelled order takes no messages (409)."""
    attachments = [a.model_dump(by_alias=True) for a in body.attachments]
    done = ledger.post_message(caller, parse_id(order_id, "order"), body.text, attachments, new_id)
    tag(response, None, done.position)
    return message_answer(done.aggregate)


@router.get("/messages", response_model=schemas.Page[schemas.Message], dependencies=[Fresh])
def list_messages(
    order_id: str,
    caller: CallerDep,
    models: ReadModelsDep,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    """The order's messages, oldest first; auditors read them too."""
    oid = str(parse_id(order_id, "order"))
    visible_order(models, caller, oid)
    return models.messages.page(oid, limit, starting_after)
