"""``POST /v1/webhooks/youcanpay`` (docs/api.md "Payments"), on SQLite and PostgreSQL.

The test plays the gateway: it signs YouCanPay envelopes with the sandbox's key, exactly as
YouCanPay (and the embedded sandbox) sign them. Whatever is refused, ignored or repeated
must leave the event store's head where it was.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.gateway.signing import signature_of
from ledger.settings import Settings
from tests.api.conftest import Api
from tests.api.test_contract import assert_problem, has, head

PATH = "/v1/webhooks/youcanpay"
PRICE = 10_000  # BASIC's 100.00 MAD, in centimes as the gateway sends it
STATUS = {"transaction.paid": "paid", "transaction.failed": "failed"}
SIGN = object()  # "sign the body with the right key"


@pytest.fixture
def key(settings: Settings) -> str:
    return settings.gateway_key


@pytest.fixture
def order(api: Api) -> dict[str, Any]:
    """A pending order of client-1 whose payment (100.00 MAD) is open at the gateway."""
    return opened(api, api.gig())


def opened(api: Api, gig: dict[str, Any]) -> dict[str, Any]:
    order = api.order(gig)
    body = {"paymentMethod": "credit_card"}
    answer = api.client.post(
        f"/v1/orders/{order['id']}/payments", json=body, headers=api.as_("client-1")
    )
    assert answer.status_code == 201, answer.text
    return order


def envelope(
    order: dict[str, Any], event: str = "transaction.paid", webhook: str = "wh-1", **fields: Any
) -> dict[str, Any]:
    transaction = {
        "id": "tx-1",
        "status": STATUS.get(event, "refunded"),
        "order_id": order["id"],
        "amount": PRICE,
        "currency": "MAD",
        **fields,
    }
    payload = {"transaction": transaction, "metadata": {}}
    return {"id": webhook, "event_name": event, "sandbox": True, "payload": payload}


def deliver(
    api: Api, key: str, message: dict[str, Any] | bytes, signature: Any = SIGN
) -> httpx.Response:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    if signature is SIGN:
        signature = signature_of(key, body)
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Youcanpay-Signature"] = signature
    return api.client.post(PATH, content=body, headers=headers)


def answered(response: httpx.Response, status: str) -> None:
    assert (response.status_code, response.json()) == (200, {"status": status}), response.text


def refused(response: httpx.Response, status: int, code: str) -> None:
    """A problem+json refusal (the 422 ``errors`` list is checked on its own, below)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code, response.text


def now(api: Api, order: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The order's payment and the order, read once the read models reached the head."""
    position = head(api)
    payment = api.read(f"/v1/orders/{order['id']}/payment", "client-1", position=position)
    return payment, api.read(f"/v1/orders/{order['id']}", "client-1", position=position)


def cancel_reason(api: Api, order: dict[str, Any]) -> str:
    """Not in the API's Order: read from the write side."""
    return str(api.app.state.ledger.repository.get(UUID(order["id"])).cancel_reason)


# -- recording ------------------------------------------------------------------------------


def test_a_signed_paid_webhook_succeeds_the_payment_and_the_order(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    response = deliver(api, key, envelope(order))
    answered(response, "recorded")
    assert int(response.headers["X-Ledger-Position"]) == head(api)
    wait = api.after(response)
    payment = api.client.get(
        f"/v1/orders/{order['id']}/payment", headers={**api.as_("client-1"), **wait}
    )
    assert payment.status_code == 200, payment.text
    has(payment.json(), status="success", transactionId="tx-1", failureReason=None, version=3)
    placed = api.client.get(f"/v1/orders/{order['id']}", headers={**api.as_("client-1"), **wait})
    has(placed.json(), status="processing", stage="awaiting_acceptance", version=2)


def test_bad_signatures_are_refused_and_nothing_is_stored(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    body = json.dumps(envelope(order)).encode()
    good = signature_of(key, body)
    tampered = body.replace(b'"tx-1"', b'"tx-2"')
    cases = [  # what is sent, X-Youcanpay-Signature
        (body, None),  # missing
        (body, ""),
        (body, "not-a-signature"),
        (body, good[:-1]),
        (body, "0" * 64),
        (body, signature_of("another-key", body)),
        (body, signature_of(key, tampered)),
        (tampered, good),
    ]
    before = head(api)
    for sent, signature in cases:
        refused(deliver(api, key, sent, signature), 401, "invalid_signature")
    assert head(api) == before
    payment, placed = now(api, order)
    assert (payment["status"], placed["status"]) == ("pending", "pending")

    answered(deliver(api, key, body, good.upper()), "recorded")  # hex in any case


def test_a_signature_that_is_not_ascii_is_refused_not_a_500(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    """Any header value a client sends must get a 401, never a 500 (docs/api.md "Errors")."""
    body = json.dumps(envelope(order)).encode()
    before = head(api)
    client = TestClient(api.app, raise_server_exceptions=False)  # the app already runs
    for signature in (b"\xe9" * 64, signature_of(key, body)[:-1].encode() + b"\xe9"):
        response = client.post(PATH, content=body, headers={"X-Youcanpay-Signature": signature})
        refused(response, 401, "invalid_signature")
    assert head(api) == before


def test_a_failed_webhook_fails_the_payment_and_cancels_the_order(api: Api, key: str) -> None:
    gig = api.gig()
    cases = [  # transaction fields → failureReason
        ({"reason": "card_declined"}, "card_declined"),
        ({"reason": None}, "declined"),
        ({}, "declined"),
    ]
    for fields, reason in cases:
        order = opened(api, gig)
        answered(deliver(api, key, envelope(order, "transaction.failed", **fields)), "recorded")
        payment, placed = now(api, order)
        has(payment, status="failed", failureReason=reason, transactionId="tx-1")
        has(placed, status="cancelled", stage="closed")
        assert cancel_reason(api, order) == "payment_failed"


def test_a_refunded_webhook_records_a_refund_up_to_what_remains(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    refund = "transaction.refunded"
    steps = [  # webhook, amount, answer, refundedAmount after it
        ("wh-r0", 4_000, "ignored", 0.0),  # still pending: nothing to refund
        ("wh-paid", None, "recorded", 0.0),
        ("wh-r1", 4_000, "recorded", 40.0),
        ("wh-r2", 6_001, "ignored", 40.0),  # beyond the 60.00 left
        ("wh-r3", 6_000, "recorded", 100.0),
        ("wh-r4", 1, "ignored", 100.0),
    ]
    for webhook, amount, answer, refunded in steps:
        before = head(api)
        if amount is None:
            message = envelope(order, webhook=webhook)
        else:
            message = envelope(order, refund, webhook, amount=amount)
        answered(deliver(api, key, message), answer)
        assert (head(api) > before) == (answer == "recorded"), webhook
        payment, _ = now(api, order)
        assert payment["refundedAmount"] == refunded, webhook
    assert [(r["amount"], r["reason"]) for r in payment["refunds"]] == [
        (40.0, "refunded_at_gateway"),
        (60.0, "refunded_at_gateway"),
    ]


def test_a_refund_in_another_currency_is_a_conflict(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    """As for a payment: 40.00 USD refunded must not be booked as 40.00 MAD."""
    answered(deliver(api, key, envelope(order)), "recorded")
    before = head(api)
    message = envelope(order, "transaction.refunded", "wh-2", amount=4_000, currency="USD")
    refused(deliver(api, key, message), 409, "conflict")
    assert head(api) == before


def test_a_refund_of_another_transaction_is_a_conflict_and_stores_nothing(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    """The payment was paid by tx-1: a refund of tx-2 is news about other money (issue 18)."""
    answered(deliver(api, key, envelope(order)), "recorded")
    before, settled = head(api), now(api, order)
    message = envelope(order, "transaction.refunded", "wh-2", amount=4_000, id="tx-2")
    refused(deliver(api, key, message), 409, "conflict")
    assert head(api) == before
    assert now(api, order) == settled
    right = envelope(order, "transaction.refunded", "wh-3", amount=4_000)  # tx-1's own
    answered(deliver(api, key, right), "recorded")
    assert now(api, order)[0]["refundedAmount"] == 40.0


@pytest.mark.parametrize("flag", [False, None], ids=["sandbox_false", "sandbox_absent"])
def test_a_live_webhook_is_refused_by_the_sandbox_and_stores_nothing(
    api: Api, key: str, order: dict[str, Any], flag: bool | None
) -> None:
    """The envelope's ``sandbox`` flag must say what the gateway is (issue 18)."""
    message = envelope(order)
    if flag is None:
        del message["sandbox"]
    else:
        message["sandbox"] = flag
    before = head(api)
    response = deliver(api, key, message)
    refused(response, 409, "sandbox_mismatch")
    assert "sandbox" in response.json()["detail"]
    assert head(api) == before
    answered(deliver(api, key, envelope(order)), "recorded")  # the same, as the sandbox says


# -- repeated, late and unknown news ------------------------------------------------------------


def test_after_success_repeats_and_late_news_change_nothing(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    first = envelope(order)
    answered(deliver(api, key, first), "recorded")
    before, settled = head(api), now(api, order)
    cases = [  # webhook, answer
        (first, "duplicate"),
        (envelope(order, webhook="wh-2", id="tx-1"), "ignored"),  # the same success again
        (envelope(order, "transaction.failed", "wh-3", reason="late"), "ignored"),
        (envelope(order, "transaction.created", "wh-4"), "ignored"),  # not an event we handle
        (envelope(order, "customer.updated", "wh-5"), "ignored"),
    ]
    for message, answer in cases:
        response = deliver(api, key, message)
        answered(response, answer)
        assert "X-Ledger-Position" not in response.headers
    assert head(api) == before
    assert now(api, order) == settled
    assert settled[0]["transactionId"] == "tx-1"
    # A second paid transaction means the client paid twice: a person must refund it, so
    # the gateway is told no (409) rather than the money being dropped silently.
    twice = deliver(api, key, envelope(order, webhook="wh-6", id="tx-2"))
    assert (twice.status_code, twice.json()["code"]) == (409, "conflict")
    assert head(api) == before


def test_news_that_does_not_match_a_pending_payment_stores_nothing(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    unpaid = api.order(api.gig("freelancer-2"))  # an order with no payment
    cases = [  # transaction fields, status, code
        ({"amount": PRICE - 1}, 409, "conflict"),
        ({"amount": PRICE + 1}, 409, "conflict"),
        ({"currency": "USD"}, 409, "conflict"),
        ({"order_id": str(uuid4())}, 404, "not_found"),
        ({"order_id": "not-an-order"}, 404, "not_found"),
        ({"order_id": unpaid["id"]}, 404, "not_found"),
    ]
    before = head(api)
    for fields, status, code in cases:
        refused(deliver(api, key, envelope(order, **fields)), status, code)
    answered(deliver(api, key, envelope(order, "transaction.created")), "ignored")
    assert head(api) == before
    assert now(api, order)[0]["status"] == "pending"

    answered(deliver(api, key, envelope(order, amount=str(PRICE))), "recorded")  # "10000"


RAW = [b"", b"not json", b"\xff\xfe", b"[]", b"{}", b'"transaction.paid"']
ENVELOPE_CHANGES: list[dict[str, Any]] = [  # None removes the key
    {"id": None},
    {"id": ""},
    {"event_name": None},
    {"payload": None},
    {"payload": {"transaction": {}}},
    {"sandbox": "maybe"},
]
TRANSACTION_CHANGES: list[dict[str, Any]] = [
    {"amount": 0},
    {"amount": -100},
    {"amount": 100.5},
    {"amount": "100.00"},
    {"amount": True},
    {"amount": None},
    {"currency": "MADX"},
    {"currency": None},
    {"id": ""},
    {"order_id": None},
]


def changed(item: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in item.items() if changes.get(key, 0) is not None}
    return {**kept, **{key: value for key, value in changes.items() if value is not None}}


def malformed(order: dict[str, Any]) -> list[dict[str, Any] | bytes]:
    good = envelope(order)
    transactions = [
        {**good, "payload": {"transaction": changed(good["payload"]["transaction"], change)}}
        for change in TRANSACTION_CHANGES
    ]
    return [*RAW, *(changed(good, change) for change in ENVELOPE_CHANGES), *transactions]


def test_a_malformed_envelope_is_422_and_nothing_is_stored(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    before = head(api)
    for case in malformed(order):
        response = deliver(api, key, case)
        assert response.status_code == 422, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert head(api) == before


def test_a_422_for_a_malformed_envelope_lists_its_errors(
    api: Api, key: str, order: dict[str, Any]
) -> None:
    """docs/api.md "Errors": every 422 carries ``errors: [{"field", "message"}]``."""
    assert_problem(deliver(api, key, envelope(order, amount=0)), 422)


# -- races and out of order -----------------------------------------------------------------


def test_two_identical_webhooks_at_once_have_one_effect(
    api: Api, key: str, order: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both requests start together and both load the pending payment before either
    saves (the first two loads meet at a barrier), so one of them must lose the race. The
    process keeps nothing in its cache here, so each decision loads in a thread of its own
    (one taken on the event loop would hold the loop at the barrier)."""
    ledger = api.app.state.ledger
    ledger.read_cache.forget([payment_id_for(UUID(order["id"])), UUID(order["id"])])
    monkeypatch.setattr(ledger.read_cache, "put", lambda aggregate: None)
    load, loads, lock = ledger._payment, [], threading.Lock()
    both_loaded = threading.Barrier(2, timeout=10)

    def load_together(payment_id: UUID) -> Any:
        payment = load(payment_id)
        with lock:
            loads.append(payment_id)
            first_two = len(loads) <= 2
        if first_two:
            both_loaded.wait()
        return payment

    monkeypatch.setattr(ledger, "_payment", load_together)
    body = json.dumps(envelope(order)).encode()
    start = threading.Barrier(2, timeout=10)

    def send(_: int) -> httpx.Response:
        start.wait()
        return deliver(api, key, body)

    before = head(api)
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(send, range(2)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["status"] for r in responses) == ["duplicate", "recorded"]
    assert len(loads) == 3  # the loser decided again, and found the webhook recorded
    assert head(api) == before + 2  # PaymentSucceeded and OrderPaymentConfirmed, once
    payment, placed = now(api, order)
    has(payment, status="success", version=3)
    has(placed, status="processing", version=2)


@pytest.mark.parametrize("failure", ["expired", "declined"])
def test_paid_after_a_failure_is_recorded_and_refunded(
    api: Api, key: str, order: dict[str, Any], failure: str
) -> None:
    """The clock expired the payment, or a first card was declined and a second one paid
    on the same form: the money was taken, so it is recorded and given back at once."""
    payment_id = payment_id_for(UUID(order["id"]))
    if failure == "expired":
        api.app.state.ledger.fail_payment(Caller.system("clock"), payment_id, "expired")
    else:
        declined = envelope(order, "transaction.failed", "wh-0", id="tx-0", reason="declined")
        answered(deliver(api, key, declined), "recorded")
    expired, cancelled = now(api, order)
    has(expired, status="failed", failureReason=failure)
    has(cancelled, status="cancelled")

    response = deliver(api, key, envelope(order))
    answered(response, "recorded")
    payment, placed = now(api, order)
    has(payment, status="success", transactionId="tx-1", failureReason=None)
    has(payment, refundedAmount=100.0)
    assert [(r["amount"], r["reason"]) for r in payment["refunds"]] == [
        (100.0, "order_cancelled_before_payment")
    ]
    assert placed == cancelled  # not one event more
    answered(deliver(api, key, envelope(order)), "duplicate")
