"""Payment expiry (a timer driven by the fake clock) and support's gateway sync."""

from __future__ import annotations

from api.runtime.timers import Timer, payment_expiry
from tests.api.conftest import Api
from tests.conftest import FakeClock


def pay_pending(api: Api) -> tuple[dict, dict]:
    order = api.order(api.gig())
    return order, api.open_payment(order)


def expiry(api: Api, clock: FakeClock) -> Timer:
    state = api.app.state
    return payment_expiry(state.ledger, state.read_models, clock)


def test_a_payment_pending_past_its_expiry_fails_and_cancels_its_order(
    api: Api, clock: FakeClock
) -> None:
    order, payment = pay_pending(api)
    head = api.app.state.ledger.recorder.max_notification_id()
    assert api.app.state.runner.wait_for(head, 5)
    expire = expiry(api, clock)
    clock.advance(minutes=29, seconds=59)
    assert expire() == 0
    clock.advance(seconds=2)
    assert expire() == 1
    head = api.app.state.ledger.recorder.max_notification_id()
    seen = api.read(f"/v1/payments/{payment['id']}", "client-1", position=head)
    assert (seen["status"], seen["failureReason"]) == ("failed", "expired")
    cancelled = api.read(f"/v1/orders/{order['id']}", "client-1", position=head)
    assert (cancelled["status"], cancelled["stage"]) == ("cancelled", "closed")
    assert expire() == 0, "an expired payment is not expired twice"
    assert api.app.state.ledger.recorder.max_notification_id() == head


def test_a_paid_payment_never_expires(api: Api, clock: FakeClock) -> None:
    order = api.paid_order(api.gig())
    head = api.app.state.ledger.recorder.max_notification_id()
    clock.advance(days=2)
    assert expiry(api, clock)() == 0
    assert api.app.state.ledger.recorder.max_notification_id() == head
    assert api.read(f"/v1/orders/{order['id']}", "client-1")["status"] == "processing"


def test_support_syncs_a_payment_with_the_gateway(api: Api) -> None:
    order, payment = pay_pending(api)
    sync = f"/v1/payments/{payment['id']}/sync"
    nothing_yet = api.client.post(sync, headers=api.as_("support-1", "support"))
    assert (nothing_yet.status_code, nothing_yet.json()["code"]) == (409, "invalid_transition")
    token = payment["checkout"]["tokenId"]
    card = {"cardNumber": "4242424242424242", "expiry": "12/30", "cvv": "123",
            "cardHolderName": "A Client"}  # fmt: skip
    paid = api.client.post(f"/sandbox/payment-form/{token}", json=card)
    assert paid.json()["status"] == "paid", paid.text
    head = api.app.state.ledger.recorder.max_notification_id()
    synced = api.client.post(sync, headers=api.as_("support-1", "support"))
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "success"
    assert api.app.state.ledger.recorder.max_notification_id() == head, "nothing new to record"
    assert api.client.post(sync, headers=api.as_("client-1")).status_code == 403
    assert api.client.post(sync, headers=api.as_("someone-else")).status_code == 404
    assert api.client.post(sync, headers=api.as_("auditor-1", "auditor")).status_code == 403
    assert order["id"] == synced.json()["orderId"]


def test_idempotency_keys_are_forgotten_after_a_day(api: Api, clock: FakeClock) -> None:
    store = api.app.state.idempotency
    headers = {**api.as_("freelancer-1"), "Idempotency-Key": "gig-1"}
    body = {"title": "Logo", "packages": [{"packageId": "basic", "price": 100,
            "deliveryDays": 3, "revisions": 1, "description": "d"}]}  # fmt: skip
    assert api.client.post("/v1/gigs", json=body, headers=headers).status_code == 201
    clock.advance(hours=23, minutes=59)
    assert store.purge() == 0
    clock.advance(minutes=2)
    assert store.purge() == 1
    assert store.db.read("SELECT key FROM idempotency_keys") == []


def test_a_sync_of_a_transaction_the_sandbox_does_not_know_is_404(api: Api) -> None:
    """The sandbox forgets its transactions on restart: a clear 404, not a 502 (issue 17)."""
    order = api.paid_order(api.gig(), transaction="tx-from-before-a-restart")
    payment = api.read(f"/v1/orders/{order['id']}/payment", "client-1")
    head = api.app.state.ledger.recorder.max_notification_id()
    answer = api.client.post(
        f"/v1/payments/{payment['id']}/sync", headers=api.as_("support-1", "support")
    )
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "transaction_not_found"
    assert "tx-from-before-a-restart" in answer.json()["detail"]
    assert api.app.state.ledger.recorder.max_notification_id() == head
