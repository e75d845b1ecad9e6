"""The sandbox gateway's hosted checkout, served by this service (``LEDGER_GATEWAY=sandbox``).

``GET /sandbox/payment-form/{token}`` shows the amount and a card form;
``POST`` (a browser's form, or JSON) charges a test card, delivers the signed webhook to
our own webhook handling (``api.http.webhooks.receive``, exactly as a real one), then sends a
browser on to the checkout's success or error page — or answers JSON to a JSON request.
Those pages (``routes.checkout``) are served whatever the gateway.

The token in the path is the only credential: the form admits it only when it is the one
stored with the payment it names (``ledger.gateway.sandbox``), and every other token is the
same 404, so the form tells nothing of which orders or payments exist. Every answer carries
``PAGE_HEADERS`` (``routes.checkout.PageRoute``).
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.http.problems import ApiError, invalid
from api.http.routes.checkout import PageRoute, page
from api.http.webhooks import receive
from ledger.domain.payment import Payment
from ledger.domain.values import PaymentStatus
from ledger.errors import NotFound, ValidationFailed
from ledger.gateway.sandbox import Sandbox, is_token_of, payment_of_token
from ledger.money import from_centimes
from ledger.service import LedgerApp

router = APIRouter(tags=["sandbox gateway"], include_in_schema=True, route_class=PageRoute)
UNKNOWN_CHECKOUT = "no such checkout"
"""The one detail of every token the form does not admit, whatever the reason."""


class Card(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    card_number: Annotated[
        str, Field(alias="cardNumber", min_length=12, max_length=23, pattern=r"^[0-9 ]+$")
    ]
    expiry: Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])/\d{2}$")]
    cvv: Annotated[str, Field(pattern=r"^\d{3,4}$")]
    card_holder_name: Annotated[str, Field(alias="cardHolderName", min_length=1, max_length=100)]

    @field_validator("card_number")
    @classmethod
    def _digits(cls, value: str) -> str:
        digits = value.replace(" ", "")
        if not digits.isdigit():
            raise ValueError("a card number is made of digits")
        return digits

    def expired(self, now: datetime) -> bool:
        month, year = (int(part) for part in self.expiry.split("/"))
        return (2000 + year, month) < (now.year, now.month)


class PaidOut(BaseModel):
    """The answer to a JSON request: whether the test card paid, for which payment of
    which order."""

    status: Literal["paid", "declined"]
    paymentId: str
    orderId: str


def _sandbox(ledger: LedgerApp) -> Sandbox:
    if not isinstance(ledger.gateway, Sandbox):
        raise NotFound("the sandbox gateway is not in use")
    return ledger.gateway


def _payment(ledger: LedgerApp, token_id: str) -> Payment:
    """The payment whose stored checkout token is ``token_id``.

    Raises: NotFound, with the same detail for a malformed token, an unknown payment and a
    token that is not the payment's own."""
    payment_id = payment_of_token(token_id)
    try:
        if payment_id is not None:
            payment = ledger.get_payment_for_checkout(payment_id)
            stored = payment.checkout["token_id"] if payment.checkout else None
            if is_token_of(token_id, stored):
                return payment
    except NotFound:
        pass
    raise NotFound(UNKNOWN_CHECKOUT)


@router.get("/sandbox/payment-form/{token_id}", response_class=HTMLResponse)
def payment_form(token_id: str, request: Request) -> HTMLResponse:
    ledger: LedgerApp = request.app.state.ledger
    _sandbox(ledger)
    payment = _payment(ledger, token_id)
    return HTMLResponse(_form_page(payment, token_id))


@router.post(
    "/sandbox/payment-form/{token_id}",
    response_model=None,
    description=(
        "Charges a test card. The browser's form posts the same fields as"
        " application/x-www-form-urlencoded and is answered 303; only the JSON body is"
        " declared, since code generators mishandle an operation with two bodies."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Card.model_json_schema()}},
        }
    },
    responses={
        200: {
            "description": "A JSON request: how the charge went",
            "content": {"application/json": {"schema": PaidOut.model_json_schema()}},
        },
        303: {
            "description": "A form's request: on to the checkout's success or error page",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
    },
)
async def pay(token_id: str, request: Request) -> Response:
    ledger: LedgerApp = request.app.state.ledger
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    card = _card(await request.body(), wants_json)
    outcome = await run_in_threadpool(_charge, ledger, token_id, card, _request_id(request))
    paid, payment_id, order_id = outcome
    if wants_json:
        answer = {"status": "paid" if paid else "declined", "paymentId": payment_id}
        return JSONResponse({**answer, "orderId": order_id})
    page = "success" if paid else "error"
    return RedirectResponse(f"{ledger.public_url}/checkout/{payment_id}/{page}", status_code=303)


def _card(body: bytes, wants_json: bool) -> Card:
    try:
        fields: Any = json.loads(body) if wants_json else dict(parse_qsl(body.decode()))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "the card details are not readable", code="malformed_json") from None
    try:
        return Card.model_validate(fields)
    except ValidationError as error:
        raise invalid(error, "the card details are not valid") from None


def _charge(
    ledger: LedgerApp, token_id: str, card: Card, request_id: str | None
) -> tuple[bool, str, str]:
    sandbox = _sandbox(ledger)
    payment = _payment(ledger, token_id)
    if payment.status != PaymentStatus.PENDING:
        raise ApiError(409, f"this payment is already {payment.status}", code="invalid_transition")
    if card.expired(ledger.clock()):
        raise ValidationFailed("the card has expired", field="expiry")
    webhook = sandbox.charge(payment.order_id, payment.amount, payment.currency, card.card_number)
    outcome, _ = receive(ledger, webhook.body, webhook.signature, request_id)
    if outcome != "recorded":  # another submit of this form settled it first
        raise ApiError(409, "this payment was settled meanwhile", code="invalid_transition")
    return webhook.paid, str(payment.id), str(payment.order_id)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _form_page(payment: Payment, token_id: str) -> str:
    amount = f"{from_centimes(payment.amount)} {html.escape(payment.currency)}"
    if payment.status != PaymentStatus.PENDING:
        return page("Sandbox checkout", f"<p>This payment is {html.escape(payment.status)}.</p>")
    action = f"/sandbox/payment-form/{html.escape(token_id)}"
    return page(
        "Sandbox checkout",
        f"""<p>Amount: <strong id="amount">{amount}</strong></p>
<form method="post" action="{action}">
  <label>Card number
    <input name="cardNumber" inputmode="numeric" autocomplete="cc-number" required></label>
  <label>Expiry (MM/YY)
    <input name="expiry" placeholder="MM/YY" autocomplete="cc-exp" required></label>
  <label>CVV <input name="cvv" inputmode="numeric" autocomplete="cc-csc" required></label>
  <label>Card holder <input name="cardHolderName" autocomplete="cc-name" required></label>
  <button type="submit">Pay {amount}</button>
</form>
<p class="hint">Test cards: 4242 4242 4242 4242 is paid, 4000 0000 0000 0002 is declined.</p>""",
    )
