"""Refunds where the gateway has no refund API (YouCanPay): the ledger asks for the refund;
it counts only once the gateway's webhook or support confirms it was made there."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.gateway.sandbox import Sandbox
from ledger.gateway.signing import signature_of
from tests.api.conftest import Api

SUPPORT = ("support-1", "support")


class ManualRefunds(Sandbox):
    """The sandbox's checkout and signatures, with YouCanPay's refunds."""

    refunds_at_once = False


@pytest.fixture
def manual(api: Api) -> Api:
    ledger = api.app.state.ledger
    sandbox = ledger.gateway
    ledger.gateway = ManualRefunds(sandbox._key, ledger.public_url)
    return api


def cancelled_for_policy(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    order = api.paid_order(api.gig())
    cancel = api.client.post(
        f"/v1/orders/{order['id']}/cancel",
        json={"reason": "policy_violation"},
        headers=api.as_(*SUPPORT),
    )
    assert cancel.status_code == 200, cancel.text
    payment = api.read(
        f"/v1/orders/{order['id']}/payment",
        "client-1",
        position=int(cancel.headers["X-Ledger-Position"]),
    )
    return order, payment


def refunded_webhook(
    api: Api,
    order: dict[str, Any],
    amount: int,
    webhook_id: str = "evt-refund-1",
    transaction_id: str = "tx-1",
) -> Any:
    """YouCanPay's ``transaction.refunded``: it names the transaction that paid."""
    body = json.dumps({
        "id": webhook_id, "event_name": "transaction.refunded", "sandbox": True,
        "payload": {"transaction": {"id": transaction_id, "status": "refunded",
                    "order_id": order["id"], "amount": amount, "currency": "MAD"}},
    }).encode()  # fmt: skip
    key = api.app.state.ledger.gateway._key
    return api.client.post(
        "/v1/webhooks/youcanpay",
        content=body,
        headers={"X-Youcanpay-Signature": signature_of(key, body)},
    )


def test_a_cancellation_asks_for_the_refund_without_counting_it(manual: Api) -> None:
    _, payment = cancelled_for_policy(manual)
    assert payment["refundedAmount"] == 0.0
    [refund] = payment["refunds"]
    assert (refund["status"], refund["amount"], refund["reference"]) == ("requested", 100.0, None)


def test_the_gateways_webhook_confirms_the_requested_refund(manual: Api) -> None:
    order, payment = cancelled_for_policy(manual)
    assert refunded_webhook(manual, order, 9_999).status_code == 409, "not the amount asked"
    answer = refunded_webhook(manual, order, 10_000)
    assert answer.json() == {"status": "recorded"}
    seen = manual.read(
        f"/v1/payments/{payment['id']}",
        "client-1",
        position=int(answer.headers["X-Ledger-Position"]),
    )
    assert seen["refundedAmount"] == 100.0
    [refund] = seen["refunds"]
    assert (refund["status"], refund["reference"]) == ("completed", "tx-1")
    assert refunded_webhook(manual, order, 10_000).json() == {"status": "duplicate"}


def test_support_confirms_a_refund_made_at_the_gateway(manual: Api) -> None:
    _, payment = cancelled_for_policy(manual)
    path = f"/v1/payments/{payment['id']}/refunds/confirm"
    body = {"reference": "YCP-REF-42"}
    for who, status in [(("client-1",), 403), (("auditor-1", "auditor"), 403), (("x",), 404)]:
        assert manual.client.post(path, json=body, headers=manual.as_(*who)).status_code == status
    done = manual.client.post(path, json=body, headers=manual.as_(*SUPPORT))
    assert done.status_code == 200, done.text
    assert done.json()["refundedAmount"] == 100.0
    assert done.json()["refunds"][0]["reference"] == "YCP-REF-42"
    again = manual.client.post(path, json=body, headers=manual.as_(*SUPPORT))
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")


def test_a_refund_confirmed_by_hand_is_not_counted_again_by_its_webhook(manual: Api) -> None:
    """Support quotes the gateway's refund id; the webhook about that refund then finds it."""
    order, payment = cancelled_for_policy(manual)
    path = f"/v1/payments/{payment['id']}/refunds/confirm"
    done = manual.client.post(path, json={"reference": "tx-1"}, headers=manual.as_(*SUPPORT))
    assert done.json()["refundedAmount"] == 100.0
    noticed = refunded_webhook(manual, order, 10_000)
    assert noticed.json() == {"status": "recorded"}, "the notice is kept, not counted"
    assert refunded_webhook(manual, order, 10_000).json() == {"status": "duplicate"}
    seen = manual.read(
        f"/v1/payments/{payment['id']}",
        "client-1",
        position=int(noticed.headers["X-Ledger-Position"]),
    )
    assert seen["refundedAmount"] == 100.0
    assert len(seen["refunds"]) == 1


def split_refund_of(manual: Api, refund: float) -> tuple[dict[str, Any], str]:
    """A delivered order split in a dispute, its refund asked for; the payment's path."""
    order = manual.paid_order(manual.gig())
    for command, who, body in [
        ("disputes", ("client-1",), {"reason": "half done"}),
        ("disputes/resolve", SUPPORT, {"outcome": "split", "refundAmount": refund}),
    ]:
        done = manual.client.post(
            f"/v1/orders/{order['id']}/{command}", json=body, headers=manual.as_(*who)
        )
        assert done.status_code == 200, done.text
    payment = manual.read(f"/v1/orders/{order['id']}/payment", "client-1")
    return order, f"/v1/payments/{payment['id']}"


def test_a_webhook_finds_a_refund_confirmed_by_hand_under_another_reference(
    manual: Api,
) -> None:
    """Support quoted the dashboard's reference, the webhook names the transaction: the
    webhook is matched by amount, so the refund is not counted (nor clawed back) twice."""
    order, path = split_refund_of(manual, 30.0)
    done = manual.client.post(
        f"{path}/refunds/confirm",
        json={"reference": "rf_dashboard_1"},
        headers=manual.as_(*SUPPORT),
    )
    assert done.status_code == 200, done.text
    answer = refunded_webhook(manual, order, 3_000, transaction_id="tx-1")
    assert answer.json() == {"status": "recorded"}
    seen = manual.read(path, "client-1", position=int(answer.headers["X-Ledger-Position"]))
    assert (seen["refundedAmount"], len(seen["refunds"])) == (30.0, 1)


def test_a_later_refund_of_the_same_transaction_counts(manual: Api) -> None:
    """A second refund the gateway reports under the same transaction id (a new webhook id)
    is new money going back, not a repeat of the first."""
    order, path = split_refund_of(manual, 30.0)
    first = refunded_webhook(manual, order, 3_000, "wh-1", "tx-1")
    assert first.json() == {"status": "recorded"}
    second = refunded_webhook(manual, order, 1_000, "wh-2", "tx-1")
    assert second.json() == {"status": "recorded"}
    seen = manual.read(path, "client-1", position=int(second.headers["X-Ledger-Position"]))
    assert seen["refundedAmount"] == 40.0
    assert [r["amount"] for r in seen["refunds"]] == [30.0, 10.0]
