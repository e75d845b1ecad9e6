"""``POST /v1/webhooks/youcanpay``: the gateway tells us how a payment went.

No bearer token: the gateway proves itself by signing the raw body (``api.http.webhooks``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Request, Response

from api.http.deps import LedgerDep
from api.http.routes.common import api_router
from api.http.webhooks import YouCanPayWebhook, receive

router = api_router(prefix="/v1/webhooks", tags=["webhooks"])


@router.post(
    "/youcanpay",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "YouCanPay's webhook, signed over these exact bytes",
            "content": {"application/json": {"schema": YouCanPayWebhook.model_json_schema()}},
        }
    },
)
async def youcanpay(
    request: Request,
    response: Response,
    ledger: LedgerDep,
    x_youcanpay_signature: Annotated[str | None, Header(max_length=256)] = None,
) -> dict[str, Any]:
    """Record a ``transaction.paid``, ``.failed`` or ``.refunded`` notification once."""
    body = await request.body()
    request_id = getattr(request.state, "request_id", None)
    outcome, position = await receive(ledger, body, x_youcanpay_signature, request_id)
    if position is not None:
        response.headers["X-Ledger-Position"] = str(position)
    return {"status": outcome}
