"""The sandbox gateway's hosted checkout (docs/api.md "Payments"), on SQLite and PostgreSQL:
the checkout a payment opens, its form, the test cards, the pages the client returns to,
and a gateway that cannot open a checkout.

Card expiry is judged by the app's clock, which is the test's ``FakeClock``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
import pytest

from ledger.bootstrap import build_ledger
from ledger.gateway.port import CheckoutRequest, GatewayError, GatewayRefused
from ledger.settings import Settings
from tests.api.conftest import BASIC, Api
from tests.api.test_contract import STANDARD, assert_problem, has, head
from tests.conftest import FakeClock

PAID, DECLINED = "4242424242424242", "4000000000000002"
CARD = {"expiry": "12/27", "cvv": "123", "cardHolderName": "Amina Alaoui"}


@pytest.fixture
def public_url(settings: Settings) -> str:
    return str(settings.public_url).rstrip("/")


def open_payment(api: Api, order: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post(
        f"/v1/orders/{order['id']}/payments",
        json={"paymentMethod": "credit_card"},
        headers=api.as_(order["userId"]),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def form_path(payment: dict[str, Any]) -> str:
    return urlsplit(payment["checkout"]["paymentUrl"]).path


def pay(api: Api, path: str, card: dict[str, Any] | bytes, as_json: bool = False) -> httpx.Response:
    """POST the card to the form as a browser does (form-encoded) or as JSON."""
    if isinstance(card, bytes):
        kind = "application/json" if as_json else "application/x-www-form-urlencoded"
        return api.client.post(path, content=card, headers={"Content-Type": kind})
    if as_json:
        return api.client.post(path, json=card)
    return api.client.post(path, data=card, follow_redirects=False)


def now(api: Api, order: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The order's payment and the order, read once the read models reached the head."""
    position = head(api)
    who = order["userId"]
    payment = api.read(f"/v1/orders/{order['id']}/payment", who, position=position)
    return payment, api.read(f"/v1/orders/{order['id']}", who, position=position)


def test_a_payment_opens_a_checkout_whose_form_shows_the_amount(api: Api, public_url: str) -> None:
    gig = api.gig(packages=[BASIC, STANDARD])
    for package, shown in [("basic", "100.00 MAD"), ("standard", "250.50 MAD")]:
        payment = open_payment(api, api.order(gig, package=package))
        checkout = payment["checkout"]
        assert checkout.keys() == {"tokenId", "paymentUrl"}
        url = urlsplit(checkout["paymentUrl"])
        assert (url.scheme, url.netloc) == ("http", urlsplit(public_url).netloc), url
        assert checkout["paymentUrl"] == f"{public_url}/sandbox/payment-form/{checkout['tokenId']}"

        form = api.client.get(url.path)
        assert form.status_code == 200, form.text
        assert form.headers["content-type"].startswith("text/html")
        assert f'<strong id="amount">{shown}</strong>' in form.text
        assert f"Pay {shown}" in form.text
        assert f'action="{url.path}"' in form.text


CARDS = [  # card number, page, payment status, failureReason, order status
    (PAID, "success", "success", None, "processing"),
    (DECLINED, "error", "failed", "card_declined", "cancelled"),
]


def test_paying_in_the_form_sends_the_browser_to_the_outcome(api: Api, public_url: str) -> None:
    gig = api.gig()
    for card, page, status, reason, order_status in CARDS:
        order = api.order(gig)
        payment = open_payment(api, order)
        response = pay(api, form_path(payment), {"cardNumber": card, **CARD})
        assert response.status_code == 303, response.text
        location = f"{public_url}/checkout/{payment['id']}/{page}"
        assert response.headers["location"] == location

        settled, placed = now(api, order)
        has(settled, status=status, failureReason=reason)
        assert settled["transactionId"].startswith("sbx_tx_")
        assert placed["status"] == order_status
        shown = api.client.get(urlsplit(location).path)
        assert shown.status_code == 200, shown.text
        assert shown.headers["content-type"].startswith("text/html")
        again = api.client.get(form_path(payment))  # the form now only says how it went
        assert f"This payment is {status}." in again.text
        assert "<form" not in again.text


def test_the_outcome_pages_are_html(api: Api) -> None:
    pages = [("success", "Payment received."), ("error", "The payment did not go through.")]
    for page, text in pages:
        response = api.client.get(f"/checkout/{uuid4()}/{page}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert text in response.text


def test_paying_with_json_answers_json(api: Api) -> None:
    gig = api.gig()
    cases = [("4242 4242 4242 4242", "paid", "success"), (DECLINED, "declined", "failed")]
    for card, answer, status in cases:
        order = api.order(gig)
        payment = open_payment(api, order)
        response = pay(api, form_path(payment), {"cardNumber": card, **CARD}, as_json=True)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": answer,
            "paymentId": payment["id"],
            "orderId": payment["orderId"],
        }
        assert now(api, order)[0]["status"] == status


REFUSED_CARDS: list[tuple[dict[str, Any] | bytes, bool, int]] = [  # body, as JSON, status
    ({"cardNumber": "4111111111111111", **CARD}, True, 422),  # not a test card
    ({"cardNumber": "4111111111111111", **CARD}, False, 422),
    ({"cardNumber": PAID, **CARD, "expiry": "02/26"}, True, 422),  # the month before the clock's
    ({"cardNumber": PAID, **CARD, "expiry": "12/25"}, False, 422),
    ({}, True, 422),
    ({}, False, 422),
    ({"cardNumber": PAID, "expiry": "12/27", "cvv": "123"}, True, 422),
    ({"cardNumber": PAID, "expiry": "12/27", "cardHolderName": "A"}, False, 422),
    ({"cardNumber": PAID, **CARD, "expiry": "13/27"}, True, 422),
    ({"cardNumber": PAID, **CARD, "expiry": "1/27"}, True, 422),
    ({"cardNumber": PAID, **CARD, "cvv": "12"}, True, 422),
    ({"cardNumber": "4242-4242-4242-4242", **CARD}, True, 422),
    ({"cardNumber": PAID, **CARD, "amount": 1}, True, 422),
    (b"{", True, 400),
    (b"[]", True, 422),
    (b"\xff", False, 400),
]


def test_a_card_that_cannot_be_charged_is_refused_and_nothing_is_stored(
    api: Api, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)  # before anything is stored
    order = api.order(api.gig())
    path = form_path(open_payment(api, order))
    before = head(api)
    for card, as_json, status in REFUSED_CARDS:  # unreadable bodies are 400, like all
        response = pay(api, path, card, as_json)
        assert response.status_code == status, (card, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert head(api) == before
    assert now(api, order)[0]["status"] == "pending"

    this_month = {"cardNumber": PAID, **CARD, "expiry": "03/26"}  # long gone by the real clock
    assert pay(api, path, this_month, as_json=True).json()["status"] == "paid"


def test_a_422_for_a_card_lists_its_errors(api: Api) -> None:
    """docs/api.md "Errors": every 422 carries ``errors: [{"field", "message"}]``."""
    path = form_path(open_payment(api, api.order(api.gig())))
    for card in [{"cardNumber": PAID, **CARD, "expiry": "12/25"}, {"cardNumber": PAID}]:
        assert_problem(pay(api, path, card, as_json=True), 422)


def test_a_payment_is_charged_once(api: Api) -> None:
    order = api.order(api.gig())
    path = form_path(open_payment(api, order))
    assert pay(api, path, {"cardNumber": PAID, **CARD}).status_code == 303
    before, settled = head(api), now(api, order)
    for card, as_json in [(PAID, False), (DECLINED, False), (PAID, True)]:
        response = pay(api, path, {"cardNumber": card, **CARD}, as_json)
        assert_problem(response, 409, "invalid_transition")
    assert head(api) == before
    assert now(api, order) == settled


def test_a_payment_another_process_expired_is_not_charged(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    """The form checks the payment as stored, not as this process last knew it: a charge
    for a payment that expired meanwhile would be recorded as a late payment and refunded at
    once, so the form refuses it before charging the card, and it stays expired."""
    order = api.order(api.gig())
    payment = open_payment(api, order)
    clock.advance(days=2)  # past the card's window to pay
    other = build_ledger(settings, clock)
    try:
        assert other.expire_payment(UUID(payment["id"])) is not None
    finally:
        other.close()
    before = head(api)
    response = pay(api, form_path(payment), {"cardNumber": PAID, **CARD}, as_json=True)
    assert_problem(response, 409, "invalid_transition")
    assert head(api) == before
    expired, cancelled = now(api, order)
    assert (expired["status"], expired["failureReason"]) == ("failed", "expired")
    assert cancelled["status"] == "cancelled"


def test_an_unknown_checkout_is_404(api: Api) -> None:
    unpaid = api.order(api.gig())  # an order with no payment, hence no checkout
    tokens = ["nope", "sbx_", "sbx_zz", f"sbx_{uuid4().hex}", f"sbx_{UUID(unpaid['id']).hex}"]
    before = head(api)
    for token in tokens:
        path = f"/sandbox/payment-form/{token}"
        assert_problem(api.client.get(path), 404, "not_found")
        assert_problem(pay(api, path, {"cardNumber": PAID, **CARD}, as_json=True), 404)
    assert head(api) == before


class Broken:
    """A gateway that cannot open a checkout."""

    name = "broken"

    def __init__(self, error: GatewayError) -> None:
        self.error = error

    def tokenize(self, request: CheckoutRequest) -> Any:
        raise self.error

    def lookup(self, transaction_id: str) -> Any:
        raise self.error

    def verify(self, body: bytes, signature: str | None) -> bool:
        return False


def test_a_gateway_that_cannot_open_a_checkout_leaves_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = api.app.state.ledger
    order = api.order(api.gig())
    failures = [
        (GatewayError("timed out"), 503, "gateway_unavailable"),
        (GatewayRefused("bad key"), 502, "gateway_refused"),
    ]
    before = head(api)
    for error, status, code in failures:
        with monkeypatch.context() as patch:
            patch.setattr(ledger, "gateway", Broken(error))
            response = api.client.post(
                f"/v1/orders/{order['id']}/payments",
                json={"paymentMethod": "credit_card"},
                headers=api.as_("client-1"),
            )
        assert_problem(response, status, code)
        assert head(api) == before
        missing = api.client.get(f"/v1/orders/{order['id']}/payment", headers=api.as_("client-1"))
        assert_problem(missing, 404, "not_found")
        placed = api.read(f"/v1/orders/{order['id']}", "client-1", position=before)
        has(placed, status="pending", version=1)

    assert open_payment(api, order)["status"] == "pending"  # the gateway is back


def test_a_deeply_nested_body_is_malformed_not_a_crash(api: Api) -> None:
    path = form_path(open_payment(api, api.order(api.gig())))
    answer = api.client.post(
        path, content=b"[" * 50_000, headers={"Content-Type": "application/json"}
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "malformed_json")
