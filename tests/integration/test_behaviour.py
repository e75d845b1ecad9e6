"""The write side behaves the same on SQLite and on PostgreSQL (``stored_app`` runs each test
on both): the order's life, the money on the payment, reloading and snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import (
    CLIENT,
    FREELANCER,
    GATEWAY,
    PACKAGES,
    PRICE,
    SUPPORT,
    delivered_order,
    event_names,
    max_position,
    open_gig,
    paid_order,
    placed_order,
    stored_events,
)

from ledger.domain.order import Order
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, DisputeOutcome, Package
from ledger.errors import NotFound
from ledger.money import fee_of
from ledger.service import Done, LedgerApp
from ledger.settings import Settings

FEE = fee_of(PRICE, 2_000)
NET = PRICE - FEE

Step = Callable[[LedgerApp, UUID], Done[object]]
PENDING = ("pending", "awaiting_payment", 0, 0)
CLOSED = ("completed", "closed", FEE, NET)


def working(stage: str) -> tuple[str, str, int, int]:
    return ("processing", stage, 0, 0)


def confirm(app: LedgerApp, order_id: UUID) -> Done[object]:
    return app.confirm_payment(GATEWAY, payment_id_for(order_id), "txn-1", PRICE, "MAD")


HAPPY_PATH: list[tuple[Step, tuple[str, str, int, int]]] = [
    # each command, then the order's (status, stage, fee, net) after it
    (lambda app, o: app.create_payment(CLIENT, o, "credit_card"), PENDING),
    (confirm, working("awaiting_acceptance")),
    (lambda app, o: app.accept_order(FREELANCER, o), working("in_progress")),
    (lambda app, o: app.deliver_order(FREELANCER, o, "v1"), working("delivered")),
    (lambda app, o: app.request_revision(CLIENT, o, "bigger"), working("revision_requested")),
    (lambda app, o: app.deliver_order(FREELANCER, o, "v2"), working("delivered")),
    (lambda app, o: app.complete_order(CLIENT, o), CLOSED),
    (lambda app, o: app.review_order(CLIENT, o, 5, "great"), CLOSED),
]


def assert_at_head(app: LedgerApp, done: Done[object], previous: int) -> int:
    """The command's position is past the previous one and is the store's newest."""
    assert done.position > previous
    assert done.position == max_position(app)
    return done.position


def order_of(app: LedgerApp, order_id: UUID) -> Order:
    return app.get_order(CLIENT, order_id)


def ending(app: LedgerApp, order_id: UUID) -> tuple[object, ...]:
    """How an order ended: status, stage, cancel reason and what was refunded."""
    order = order_of(app, order_id)
    return (order.status, order.stage, order.cancel_reason, order.refunded)


def test_happy_path_from_gig_to_review(stored_app: LedgerApp) -> None:
    app = stored_app
    created = app.create_gig(FREELANCER, "Logo design", PACKAGES)
    position = assert_at_head(app, created, 0)
    placed = app.place_order(CLIENT, created.aggregate.id, "standard")
    position = assert_at_head(app, placed, position)
    order_id = placed.aggregate.id
    order = placed.aggregate
    assert ((order.status, order.stage, order.fee, order.net), order.total) == (PENDING, PRICE)
    for number, (step, expected) in enumerate(HAPPY_PATH):
        position = assert_at_head(app, step(app, order_id), position)
        order = order_of(app, order_id)
        assert (order.status, order.stage, order.fee, order.net) == expected, f"step {number}"
    order = order_of(app, order_id)
    assert (order.rating, order.revisions_used, order.refunded) == (5, 1, 0)
    payment = app.get_payment(CLIENT, payment_id_for(order_id))
    assert (payment.status, payment.transaction_id, payment.refunded) == ("success", "txn-1", 0)


def test_mutual_cancellation_refunds_the_payment(stored_app: LedgerApp) -> None:
    order_id = paid_order(stored_app, open_gig(stored_app))
    stored_app.accept_order(FREELANCER, order_id)
    stored_app.request_cancellation(FREELANCER, order_id, "cannot finish in time")
    done = stored_app.accept_cancellation(CLIENT, order_id)
    assert done.position == max_position(stored_app)
    assert ending(stored_app, order_id) == ("cancelled", "closed", "mutual_agreement", PRICE)
    assert stored_app.get_payment(CLIENT, payment_id_for(order_id)).refunded == PRICE
    assert event_names(stored_app, order_id)[-2:] == ["CancellationAccepted", "OrderCancelled"]
    assert event_names(stored_app, payment_id_for(order_id))[-1] == "RefundRecorded"


def test_policy_cancellation_by_support_refunds_what_was_paid(stored_app: LedgerApp) -> None:
    gig_id = open_gig(stored_app)
    paid, unpaid = paid_order(stored_app, gig_id), placed_order(stored_app, gig_id)
    for order_id, refund in ((paid, PRICE), (unpaid, 0)):
        stored_app.cancel_order(SUPPORT, order_id, CancelReason.POLICY_VIOLATION, "spam")
        assert ending(stored_app, order_id) == ("cancelled", "closed", "policy_violation", refund)
        cancelled: Any = stored_events(stored_app, order_id)[-1]
        assert (type(cancelled).__name__, cancelled.actor.role) == ("OrderCancelled", "support")
    assert stored_app.get_payment(CLIENT, payment_id_for(paid)).refunded == PRICE
    with pytest.raises(NotFound):
        stored_app.get_payment(CLIENT, payment_id_for(unpaid))


def test_dispute_split_shares_the_money(stored_app: LedgerApp) -> None:
    order_id = delivered_order(stored_app, open_gig(stored_app))
    stored_app.open_dispute(CLIENT, order_id, "not what I asked for")
    assert order_of(stored_app, order_id).stage == "in_dispute"
    stored_app.resolve_dispute(SUPPORT, order_id, DisputeOutcome.SPLIT, refund=4_000)
    order = order_of(stored_app, order_id)
    kept, fee = PRICE - 4_000, fee_of(PRICE - 4_000, 2_000)
    assert (order.status, order.stage, order.dispute_outcome) == ("completed", "closed", "split")
    assert (order.refunded, order.fee, order.net) == (4_000, fee, kept - fee)
    assert stored_app.get_payment(CLIENT, payment_id_for(order_id)).refunded == 4_000


def test_payment_failure_cancels_the_order(stored_app: LedgerApp) -> None:
    order_id = placed_order(stored_app, open_gig(stored_app))
    stored_app.create_payment(CLIENT, order_id, "cashplus")
    done = stored_app.fail_payment(GATEWAY, payment_id_for(order_id), "card declined")
    assert done.position == max_position(stored_app)
    payment = stored_app.get_payment(CLIENT, payment_id_for(order_id))
    assert (payment.status, payment.failure_reason) == ("failed", "card declined")
    assert ending(stored_app, order_id) == ("cancelled", "closed", "payment_failed", 0)


def test_a_second_app_reloads_identical_state(
    stored_app: LedgerApp, settings: Settings, clock: FakeClock
) -> None:
    gig_id = open_gig(stored_app)
    completed = delivered_order(stored_app, gig_id)
    stored_app.complete_order(CLIENT, completed)
    orders = [completed, paid_order(stored_app, gig_id), placed_order(stored_app, gig_id)]

    def state(app: LedgerApp, order_id: UUID) -> tuple[object, ...]:
        o = order_of(app, order_id)
        return (o.status, o.stage, o.version, o.package, o.fee, o.net, o.paid_amount, o.due_at)

    with open_app(settings, clock) as other:
        for order_id in orders:
            assert state(other, order_id) == state(stored_app, order_id)
        assert order_of(other, completed).fee == FEE
        assert other.get_gig(gig_id).packages == stored_app.get_gig(gig_id).packages


def test_event_timestamps_are_the_fake_clock_s(stored_app: LedgerApp, clock: FakeClock) -> None:
    placed_at = clock.now
    gig_id = open_gig(stored_app)
    order_id = placed_order(stored_app, gig_id)
    paying_at = clock.advance(hours=1)
    stored_app.create_payment(CLIENT, order_id, "credit_card")
    paid_at = clock.advance(minutes=5)
    stored_app.confirm_payment(GATEWAY, payment_id_for(order_id), "txn-9", PRICE, "MAD")
    accepted_at = clock.advance(days=2)
    stored_app.accept_order(FREELANCER, order_id)

    def times(aggregate_id: UUID) -> list[datetime]:
        return [e.timestamp for e in stored_events(stored_app, aggregate_id)]

    assert times(gig_id) == [placed_at]
    assert times(order_id) == [placed_at, paid_at, accepted_at]
    # PaymentCreated and CheckoutOpened (the sandbox's form) at once, then PaymentSucceeded.
    assert times(payment_id_for(order_id)) == [paying_at, paying_at, paid_at]
    assert order_of(stored_app, order_id).due_at == paid_at + timedelta(days=5)


def test_gig_snapshots_keep_loading_the_latest_packages(
    stored_app: LedgerApp, settings: Settings, clock: FakeClock
) -> None:
    gig_id = open_gig(stored_app)
    for price in range(1_001, 1_012):  # eleven revisions: the gig reaches version 12
        revised = [Package("basic", price, 3, 1, f"at {price}")]
        stored_app.revise_gig(FREELANCER, gig_id, packages=revised)
    assert stored_app.snapshots is not None
    snapshots = list(stored_app.snapshots.get(gig_id))
    assert [s.originator_version for s in snapshots] == [10]
    latest = {"basic": Package("basic", 1_011, 3, 1, "at 1011")}
    gig = stored_app.get_gig(gig_id)
    assert (gig.version, gig.packages) == (12, latest)
    with open_app(settings, clock) as other:
        assert other.get_gig(gig_id).packages == latest
