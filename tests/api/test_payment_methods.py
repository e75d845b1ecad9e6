"""Payment methods processed as themselves (issue 22, part 2), on SQLite and PostgreSQL.

A card goes through the hosted form and keeps its brand and last four digits; CashPlus answers
a code and no form, the order waits for the cash (``awaiting_cash_payment``), and the sandbox's
agency pays the code or lets it lapse, each through the signed webhook real ones go through.
A method the gateway does not take is 422 with the list of those it does.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.runtime.timers import payment_expiry
from ledger.settings import Settings
from tests.api.conftest import Api
from tests.api.test_contract import assert_problem, head
from tests.api.test_webhooks import deliver, envelope
from tests.conftest import FakeClock

CARD = {"cardNumber": "4242424242424242", "expiry": "12/30", "cvv": "123", "cardHolderName": "A"}


def pay_by(api: Api, order: dict[str, Any], method: str) -> httpx.Response:
    return api.client.post(
        f"/v1/orders/{order['id']}/payments",
        json={"paymentMethod": method},
        headers=api.as_("client-1"),
    )


def cash_payment(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pending order of client-1 and its CashPlus payment, as created."""
    order = api.order(api.gig())
    response = pay_by(api, order, "cashplus")
    assert response.status_code == 201, response.text
    return order, dict(response.json())


def now(api: Api, order: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    position = head(api)
    payment = api.read(f"/v1/orders/{order['id']}/payment", "client-1", position=position)
    return payment, api.read(f"/v1/orders/{order['id']}", "client-1", position=position)


def test_the_methods_the_gateway_takes_are_listed_with_their_flows(api: Api) -> None:
    response = api.client.get("/v1/payment-methods", headers=api.as_("client-1"))
    assert response.status_code == 200, response.text
    listed = [(m["method"], m["flow"], m["expiresInMinutes"]) for m in response.json()["data"]]
    assert listed == [("credit_card", "hosted_form", 30), ("cashplus", "cash_code", 72 * 60)]
    assert all(m["description"] for m in response.json()["data"])
    assert_problem(api.client.get("/v1/payment-methods"), 401)


@pytest.mark.parametrize("method", ["paypal", "bank_transfer", "wallet", "bitcoin"])
def test_a_method_not_taken_is_422_with_the_list_and_stores_nothing(api: Api, method: str) -> None:
    order = api.order(api.gig())
    before = head(api)
    response = pay_by(api, order, method)
    assert_problem(response, 422, "validation_failed")
    assert "credit_card, cashplus" in response.json()["detail"], response.text
    assert head(api) == before
    seen = api.read(f"/v1/orders/{order['id']}", "client-1", position=before)
    assert seen["stage"] == "awaiting_payment"


def test_a_cashplus_payment_answers_a_code_and_no_form(api: Api, clock: FakeClock) -> None:
    order, payment = cash_payment(api)
    assert payment["paymentMethod"] == "cashplus"
    assert payment["checkout"]["paymentUrl"] is None
    code = payment["cashplus"]["code"]
    assert re.fullmatch(r"[0-9]{12}", code), code
    assert code in payment["cashplus"]["instructions"]
    assert "100.00 MAD" in payment["cashplus"]["instructions"]
    assert payment["card"] is None
    created = datetime.fromisoformat(payment["createdAt"])
    assert datetime.fromisoformat(payment["expiresAt"]) - created == timedelta(hours=72)
    _, seen = now(api, order)
    assert (seen["status"], seen["stage"], seen["version"]) == (
        "pending",
        "awaiting_cash_payment",
        2,
    )
    events = api.client.get(f"/v1/orders/{order['id']}/history", headers=api.as_("client-1"))
    assert [e["event"] for e in events.json()["data"]] == ["OrderPlaced", "CashPaymentAwaited"]


def test_the_agency_takes_the_cash_and_the_order_starts(api: Api) -> None:
    order, payment = cash_payment(api)
    token = payment["checkout"]["tokenId"]
    page = api.client.get(f"/sandbox/cashplus/{token}")
    assert page.status_code == 200
    assert payment["cashplus"]["code"] in page.text
    paid = api.client.post(f"/sandbox/cashplus/{token}/pay")
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"status": "paid", "paymentId": payment["id"], "orderId": order["id"]}
    seen_payment, seen_order = now(api, order)
    assert (seen_payment["status"], seen_payment["card"]) == ("success", None)
    assert (seen_order["status"], seen_order["stage"]) == ("processing", "awaiting_acceptance")
    again = api.client.post(f"/sandbox/cashplus/{token}/pay")
    assert_problem(again, 409, "invalid_transition")
    assert "This code is paid." in api.client.get(f"/sandbox/cashplus/{token}").text


def test_a_lapsed_code_fails_the_payment_and_cancels_the_order(api: Api) -> None:
    order, payment = cash_payment(api)
    token = payment["checkout"]["tokenId"]
    lapsed = api.client.post(f"/sandbox/cashplus/{token}/expire")
    assert lapsed.json()["status"] == "expired", lapsed.text
    seen_payment, seen_order = now(api, order)
    assert (seen_payment["status"], seen_payment["failureReason"]) == ("failed", "expired")
    assert (seen_order["status"], seen_order["stage"]) == ("cancelled", "closed")


def test_a_form_post_goes_back_to_the_agency_page(api: Api) -> None:
    _, payment = cash_payment(api)
    token = payment["checkout"]["tokenId"]
    response = api.client.post(
        f"/sandbox/cashplus/{token}/pay",
        content=b"",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"http://127.0.0.1:8000/sandbox/cashplus/{token}"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_each_method_is_paid_only_its_own_way(api: Api) -> None:
    _, cash = cash_payment(api)
    cash_token = cash["checkout"]["tokenId"]
    by_card = api.client.post(f"/sandbox/payment-form/{cash_token}", json=CARD)
    assert_problem(by_card, 409, "conflict")
    assert "CashPlus agency" in api.client.get(f"/sandbox/payment-form/{cash_token}").text

    card = api.open_payment(api.order(api.gig()))
    card_token = card["checkout"]["tokenId"]
    assert_problem(api.client.post(f"/sandbox/cashplus/{card_token}/pay"), 409, "conflict")
    assert "made by card" in api.client.get(f"/sandbox/cashplus/{card_token}").text
    other_end = "1" if cash_token.endswith("0") else "0"  # (one in 16 tokens ends in 0)
    for wrong in (cash_token[:-1] + other_end, "sbx_nope", card_token.upper()):
        assert_problem(api.client.get(f"/sandbox/cashplus/{wrong}"), 404, "not_found")
        assert_problem(api.client.post(f"/sandbox/cashplus/{wrong}/pay"), 404, "not_found")


def test_a_card_payment_keeps_the_brand_and_last_four_digits(api: Api) -> None:
    order = api.order(api.gig())
    payment = api.open_payment(order)
    assert payment["cashplus"] is None
    created = datetime.fromisoformat(payment["createdAt"])
    assert datetime.fromisoformat(payment["expiresAt"]) - created == timedelta(minutes=30)
    paid = api.client.post(f"/sandbox/payment-form/{payment['checkout']['tokenId']}", json=CARD)
    assert paid.json()["status"] == "paid", paid.text
    seen, _ = now(api, order)
    assert seen["card"] == {"brand": "visa", "last4": "4242"}
    assert "4242424242424242" not in str(seen)
    timeline = api.client.get(f"/v1/orders/{order['id']}/timeline", headers=api.as_("client-1"))
    assert "4242424242424242" not in timeline.text


@pytest.mark.parametrize(
    "card",
    [
        {"brand": "visa", "last4": "4242424242424242"},
        {"brand": "visa", "last4": 4242},
        {"brand": "<script>", "last4": "4242"},
        "visa 4242",
    ],
)
def test_a_malformed_card_in_a_webhook_is_dropped_not_the_payment(
    api: Api, settings: Settings, card: Any
) -> None:
    order = api.order(api.gig())
    api.open_payment(order)
    answered = deliver(api, settings.gateway_key, envelope(order, card=card))
    assert answered.json() == {"status": "recorded"}, answered.text
    seen, _ = now(api, order)
    assert (seen["status"], seen["card"]) == ("success", None)


def test_cash_waits_for_its_own_window_before_the_clock_expires_it(
    api: Api, clock: FakeClock
) -> None:
    cash_order, _ = cash_payment(api)
    card_order = api.order(api.gig())
    api.open_payment(card_order)
    assert api.app.state.runner.wait_for(head(api), 5)
    expire = payment_expiry(api.app.state.ledger, api.app.state.read_models, clock)
    clock.advance(minutes=31)
    assert expire() == 1, "the card's 30 minutes are over; the cash has 72 hours"
    assert now(api, cash_order)[1]["stage"] == "awaiting_cash_payment"
    assert api.app.state.runner.wait_for(head(api), 5)
    clock.advance(hours=72)
    assert expire() == 1
    payment, order = now(api, cash_order)
    assert (payment["status"], payment["failureReason"]) == ("failed", "expired")
    assert order["status"] == "cancelled"


def test_the_offered_methods_can_be_narrowed(settings: Settings, clock: FakeClock) -> None:
    narrowed = settings.model_copy(update={"payment_methods": "credit_card"})
    app = create_app(narrowed, clock=clock)
    with TestClient(app) as client:
        api = Api(client, app)
        listed = client.get("/v1/payment-methods", headers=api.as_("client-1")).json()
        assert [m["method"] for m in listed["data"]] == ["credit_card"]
        refused = pay_by(api, api.order(api.gig()), "cashplus")
        assert_problem(refused, 422, "validation_failed")
        detail = refused.json()["detail"]
        assert detail.startswith("paymentMethod must be one of credit_card ("), detail


def test_withdrawing_an_unpaid_order_takes_its_code_with_it(api: Api, settings: Settings) -> None:
    order, payment = cash_payment(api)
    withdrawn = api.client.post(
        f"/v1/orders/{order['id']}/cancel",
        json={"reason": "client_withdrew"},
        headers=api.as_("client-1"),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    seen, _ = now(api, order)
    assert (seen["status"], seen["failureReason"]) == ("failed", "order_cancelled")
    assert "nothing more to pay" in seen["cashplus"]["instructions"]
    token = payment["checkout"]["tokenId"]
    assert_problem(api.client.post(f"/sandbox/cashplus/{token}/pay"), 409, "invalid_transition")
    late = deliver(api, settings.gateway_key, envelope(order, webhook="wh-late"))
    assert late.json() == {"status": "recorded"}, "cash paid anyway is recorded, and given back"
    seen, after = now(api, order)
    assert (seen["status"], seen["refundedAmount"], after["status"]) == (
        "success",
        100.0,
        "cancelled",
    )
