"""The sandbox gateway's hosted checkout, served by this service (``LEDGER_GATEWAY=sandbox``).

``GET /sandbox/payment-form/{token}`` shows the amount and a card form;
``POST`` (a browser's form, or JSON) charges a test card, delivers the signed webhook to
our own webhook handling (``api.http.webhooks.receive``, exactly as a real one), then sends a
browser on to the checkout's success or error page — or answers JSON to a JSON request.
Those pages (``routes.checkout``) are served whatever the gateway.

A CashPlus payment has no card form: ``GET /sandbox/cashplus/{token}`` is the "agency", where
a tester plays the cashier who takes the cash for the payment's code (``POST …/pay``) or
lets the code lapse unpaid (``POST …/expire``), each delivering the signed webhook the same
way; a browser's form is sent back to the agency page, anything else is answered JSON.

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

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.http.problems import ApiError, invalid
from api.http.routes.checkout import PageRoute, page
from api.http.routes.common import api_router
from api.http.webhooks import receive
from ledger.domain.payment import Payment
from ledger.domain.values import PaymentStatus
from ledger.errors import NotFound, ValidationFailed
from ledger.gateway.sandbox import Sandbox, is_token_of, payment_of_token
from ledger.money import from_centimes
from ledger.service import LedgerApp

router = api_router(tags=["sandbox gateway"], route_class=PageRoute)
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


class CashOut(BaseModel):
    """The answer to the agency's JSON request: whether the cash was paid or the code lapsed."""

    status: Literal["paid", "expired"]
    paymentId: str
    orderId: str


class PaidOut(BaseModel):
    """The answer to a JSON request: whether the test card paid, for which payment of
    which order."""

    status: Literal["paid", "declined"]
    paymentId: str
    orderId: str


def _answers(
    model: type[BaseModel], as_json: str, as_redirect: str
) -> dict[int | str, dict[str, Any]]:
    """The two answers of a sandbox POST in the OpenAPI: JSON for a program, 303 for a form."""
    return {
        200: {
            "description": as_json,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        },
        303: {
            "description": as_redirect,
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
    }


def _sandbox(ledger: LedgerApp) -> Sandbox:
    if not isinstance(ledger.gateway, Sandbox):
        raise NotFound("the sandbox gateway is not in use")
    return ledger.gateway


def _payment(ledger: LedgerApp, token_id: str) -> Payment:
    """The payment whose stored checkout token is ``token_id``.

    Raises: NotFound, when the sandbox is not the gateway, and with the same detail for a
    malformed token, an unknown payment and a token that is not the payment's own."""
    _sandbox(ledger)
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
    return HTMLResponse(_form_page(_payment(request.app.state.ledger, token_id), token_id))


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
    responses=_answers(
        PaidOut,
        "A JSON request: how the charge went",
        "A form's request: on to the checkout's success or error page",
    ),
)
async def pay(token_id: str, request: Request) -> Response:
    ledger: LedgerApp = request.app.state.ledger
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    card = _card(await request.body(), wants_json)
    paid, payment_id, order_id = await _charge(ledger, token_id, card, _request_id(request))
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


async def _charge(
    ledger: LedgerApp, token_id: str, card: Card, request_id: str | None
) -> tuple[bool, str, str]:
    sandbox = _sandbox(ledger)
    payment = await run_in_threadpool(_pending, ledger, token_id, by_cash=False)
    if card.expired(ledger.clock()):
        raise ValidationFailed("the card has expired", field="expiry")
    webhook = sandbox.charge(payment.order_id, payment.amount, payment.currency, card.card_number)
    outcome, _ = await receive(ledger, webhook.body, webhook.signature, request_id)
    if outcome != "recorded":  # another submit of this form settled it first
        raise ApiError(409, "this payment was settled meanwhile", code="invalid_transition")
    return webhook.paid, str(payment.id), str(payment.order_id)


def _pending(ledger: LedgerApp, token_id: str, *, by_cash: bool) -> Payment:
    """The pending payment of ``token_id``, paid by cash (``by_cash``) or by card.

    Raises: NotFound (``_payment``); ApiError 409, for a payment settled already or paid by
    the other method."""
    payment = _payment(ledger, token_id)
    if payment.status != PaymentStatus.PENDING:
        raise ApiError(409, f"this payment is already {payment.status}", code="invalid_transition")
    if payment.in_cash != by_cash:
        how = "in cash at a CashPlus agency" if not by_cash else "by card"
        raise ApiError(409, f"this payment is made {how}, not here", code="conflict")
    return payment


_AGENCY_RESPONSES = _answers(
    CashOut,
    "A JSON (or bodiless) request: what the agency did",
    "A form's request: back to the agency page",
)


@router.get("/sandbox/cashplus/{token_id}", response_class=HTMLResponse)
def agency(token_id: str, request: Request) -> HTMLResponse:
    return HTMLResponse(_agency_page(_payment(request.app.state.ledger, token_id), token_id))


@router.post("/sandbox/cashplus/{token_id}/pay", response_model=None, responses=_AGENCY_RESPONSES)
async def pay_cash(token_id: str, request: Request) -> Response:
    """The agency takes the cash for the code: ``transaction.paid``."""
    return await _settle_cash(request, token_id, paid=True)


@router.post(
    "/sandbox/cashplus/{token_id}/expire", response_model=None, responses=_AGENCY_RESPONSES
)
async def expire_cash(token_id: str, request: Request) -> Response:
    """The code lapses unpaid: ``transaction.failed``, reason ``expired``."""
    return await _settle_cash(request, token_id, paid=False)


async def _settle_cash(request: Request, token_id: str, *, paid: bool) -> Response:
    ledger: LedgerApp = request.app.state.ledger
    from_form = request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    )
    outcome = await _cash(ledger, token_id, paid, _request_id(request))
    if from_form:
        return RedirectResponse(f"{ledger.public_url}/sandbox/cashplus/{token_id}", status_code=303)
    return JSONResponse({"status": "paid" if paid else "expired", **outcome})


async def _cash(
    ledger: LedgerApp, token_id: str, paid: bool, request_id: str | None
) -> dict[str, str]:
    sandbox = _sandbox(ledger)
    payment = await run_in_threadpool(_pending, ledger, token_id, by_cash=True)
    webhook = sandbox.settle_cash(payment.order_id, payment.amount, payment.currency, paid)
    outcome, _ = await receive(ledger, webhook.body, webhook.signature, request_id)
    if outcome != "recorded":  # the clock, or another click, settled it first
        raise ApiError(409, "this payment was settled meanwhile", code="invalid_transition")
    return {"paymentId": str(payment.id), "orderId": str(payment.order_id)}


def _agency_page(payment: Payment, token_id: str) -> str:
    title = "Sandbox CashPlus agency"
    if not payment.in_cash:
        return page(title, "<p>This payment is made by card, not at an agency.</p>")
    amount = f"{from_centimes(payment.amount)} {html.escape(payment.currency)}"
    code = html.escape(payment.cash_code or "")
    facts = f"""<p>Code: <strong id="code">{code}</strong></p>
<p>Amount: <strong id="amount">{amount}</strong></p>"""
    if payment.status != PaymentStatus.PENDING:
        state = (
            "paid"
            if payment.status == PaymentStatus.SUCCESS
            else html.escape(payment.failure_reason or str(payment.status))
        )
        return page(title, f'{facts}<p id="state">This code is {state}.</p>')
    until = payment.expires_at.strftime("%Y-%m-%d %H:%M UTC") if payment.expires_at else ""
    action = f"/sandbox/cashplus/{html.escape(token_id)}"
    return page(
        title,
        f"""{facts}
<p>Valid until: {until}</p>
<p id="state">Waiting for the client's cash.</p>
<form method="post" action="{action}/pay">
  <button type="submit">Take {amount} in cash</button></form>
<form method="post" action="{action}/expire">
  <button type="submit">Let the code expire</button></form>
<p class="hint">A test agency: each button delivers the signed webhook YouCanPay would send.</p>""",
    )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _form_page(payment: Payment, token_id: str) -> str:
    amount = f"{from_centimes(payment.amount)} {html.escape(payment.currency)}"
    if payment.status != PaymentStatus.PENDING:
        return page("Sandbox checkout", f"<p>This payment is {html.escape(payment.status)}.</p>")
    if payment.in_cash:
        return page("Sandbox checkout", "<p>This payment is made in cash at a CashPlus agency.</p>")
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
