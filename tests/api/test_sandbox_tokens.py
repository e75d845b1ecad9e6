"""The sandbox checkout's token is its only credential (docs/api.md "Sandbox checkout"):
random, stored with the payment, never computable from the order's id; the form answers one
and the same 404 for every token that is not a payment's own, so it says nothing about which
orders exist; and every page it serves (and the checkout's return pages) carries the
headers that keep it out of frames and sniffing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx

from ledger.domain.payment import payment_id_for
from tests.api.conftest import Api
from tests.api.test_contract import assert_problem, head
from tests.api.test_sandbox_checkout import CARD, PAID, open_payment, pay

TOKEN = re.compile(r"sbx_(?P<payment>[0-9a-f]{32})_(?P<secret>[0-9a-f]{32})")

PAGE_HEADERS = {
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def assert_page_headers(response: httpx.Response) -> None:
    assert {name: response.headers.get(name) for name in PAGE_HEADERS} == PAGE_HEADERS


def form(token: str) -> str:
    return f"/sandbox/payment-form/{token}"


def test_the_token_names_the_payment_and_a_random_secret(api: Api) -> None:
    gig = api.gig()
    orders = [api.order(gig) for _ in range(2)]
    tokens = [open_payment(api, order)["checkout"]["tokenId"] for order in orders]
    secrets = set()
    for order, token in zip(orders, tokens, strict=True):
        found = TOKEN.fullmatch(token)
        assert found, token
        assert found["payment"] == payment_id_for(UUID(order["id"])).hex
        assert UUID(order["id"]).hex not in token
        secrets.add(found["secret"])
    assert len(secrets) == 2, "no two payments share a secret"
    first, second = secrets
    assert first[:8] != second[:8], "nothing computable either"


def test_a_token_computed_from_the_order_id_is_404(api: Api) -> None:
    order = api.order(api.gig())
    payment = open_payment(api, order)
    before = head(api)
    guesses = [
        f"sbx_{UUID(order['id']).hex}",  # the old token
        f"sbx_{UUID(payment['id']).hex}",  # the payment's id alone
        f"sbx_{UUID(payment['id']).hex}_",
    ]
    for guess in guesses:
        assert_problem(api.client.get(form(guess)), 404, "not_found")
        assert_problem(pay(api, form(guess), {"cardNumber": PAID, **CARD}, as_json=True), 404)
    assert head(api) == before


def changed(token: str, at: int) -> str:
    swapped = "0" if token[at] != "0" else "1"
    return token[:at] + swapped + token[at + 1 :]


def test_a_token_with_one_character_changed_is_404(api: Api) -> None:
    token = open_payment(api, api.order(api.gig()))["checkout"]["tokenId"]
    assert TOKEN.fullmatch(token), token
    before = head(api)
    for at in (len(token) - 1, len(token) - 32, len("sbx_") + 3):  # secret, secret, payment id
        wrong = changed(token, at)
        assert_problem(api.client.get(form(wrong)), 404, "not_found")
        assert_problem(pay(api, form(wrong), {"cardNumber": PAID, **CARD}, as_json=True), 404)
        assert_problem(pay(api, form(wrong), {"cardNumber": PAID, **CARD}), 404)
    for extra in (token + "0", token[:-1]):
        assert_problem(api.client.get(form(extra)), 404, "not_found")
    assert head(api) == before
    assert api.client.get(form(token)).status_code == 200


def test_the_404_says_nothing_of_which_orders_exist(api: Api) -> None:
    """An unknown payment, a known one with a wrong secret, a malformed token and an order
    without a payment all get the very same answer."""
    gig = api.gig()
    paying = open_payment(api, api.order(gig))
    secret = TOKEN.fullmatch(paying["checkout"]["tokenId"])["secret"]  # type: ignore[index]
    unpaid = api.order(gig)
    tokens = [
        f"sbx_{uuid4().hex}_{secret}",  # no such payment
        f"sbx_{UUID(paying['id']).hex}_{'0' * 32}",  # the payment, a wrong secret
        f"sbx_{payment_id_for(UUID(unpaid['id'])).hex}_{secret}",  # an order with no payment
        "nope",
        "sbx_zz",
        f"sbx_{UUID(unpaid['id']).hex}",
        "sbx_\u00e9t\u00e9",
    ]
    answers: list[dict[str, Any]] = []
    for token in tokens:
        for response in (
            api.client.get(form(token)),
            pay(api, form(token), {"cardNumber": PAID, **CARD}, as_json=True),
        ):
            assert_problem(response, 404, "not_found")
            assert token not in response.text
            answers.append(response.json())
    assert all(answer == answers[0] for answer in answers), answers


def test_every_page_carries_the_page_headers(api: Api) -> None:
    order = api.order(api.gig())
    payment = open_payment(api, order)
    path = urlsplit(payment["checkout"]["paymentUrl"]).path
    shown = api.client.get(path)
    assert shown.status_code == 200
    assert_page_headers(shown)

    refused = pay(api, path, {"cardNumber": "4111111111111111", **CARD})
    assert refused.status_code == 422
    assert_page_headers(refused)

    missing = api.client.get(form(f"sbx_{uuid4().hex}_{'0' * 32}"))
    assert missing.status_code == 404
    assert_page_headers(missing)

    redirect = pay(api, path, {"cardNumber": PAID, **CARD})
    assert redirect.status_code == 303
    assert_page_headers(redirect)
    settled = api.client.get(path)
    assert "This payment is success." in settled.text
    assert_page_headers(settled)

    for outcome in ("success", "error"):
        page = api.client.get(f"/checkout/{payment['id']}/{outcome}")
        assert page.status_code == 200
        assert_page_headers(page)
    malformed = api.client.get(f"/checkout/{payment['id']}/elsewhere")
    assert malformed.status_code == 422
    assert_page_headers(malformed)
