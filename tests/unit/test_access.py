"""Who sees what (ledger.access through the application's reads), in memory.

Parties and staff readers see an order and its payment; anyone else is told it does not
exist. Auditors read everything but create nothing.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import Package
from ledger.errors import Forbidden, NotFound
from ledger.service import LedgerApp

CLIENT, FREELANCER = Caller("client-1"), Caller("freelancer-1")
STRANGER = Caller("stranger-1")
AUDITOR = Caller("auditor-1", frozenset({"auditor"}))
READERS = {
    "client": CLIENT,
    "freelancer": FREELANCER,
    "support": Caller("support-1", frozenset({"support"})),
    "auditor": AUDITOR,
    "admin": Caller("admin-1", frozenset({"admin"})),
}
PACKAGE = Package("standard", 25_000, 5, 1, "Three logo drafts")


def place(app: LedgerApp) -> UUID:
    gig_id = app.create_gig(FREELANCER, "Logo design", [PACKAGE]).aggregate.id
    return app.place_order(CLIENT, gig_id, "standard").aggregate.id


def place_and_pay(app: LedgerApp) -> UUID:
    """An order at version 3: placed (1), payment confirmed (2), accepted (3)."""
    order_id = place(app)
    payment_id = app.create_payment(CLIENT, order_id, "credit_card").aggregate.id
    app.confirm_payment(Caller.system("gateway"), payment_id, "tx-9", PACKAGE.price, "MAD")
    app.accept_order(FREELANCER, order_id)
    return order_id


@pytest.mark.parametrize("reader", READERS)
def test_parties_and_staff_see_the_order(memory_app: LedgerApp, reader: str) -> None:
    order_id = place_and_pay(memory_app)
    order = memory_app.get_order(READERS[reader], order_id)
    assert (order.id, order.version, order.stage) == (order_id, 3, "in_progress")


def test_a_stranger_is_told_the_order_does_not_exist(memory_app: LedgerApp) -> None:
    order_id = place_and_pay(memory_app)
    with pytest.raises(NotFound):
        memory_app.get_order(STRANGER, order_id)
    with pytest.raises(NotFound):
        memory_app.get_order(STRANGER, order_id, version=1)


def test_an_unknown_order_is_not_found(memory_app: LedgerApp) -> None:
    place(memory_app)
    with pytest.raises(NotFound):
        memory_app.get_order(READERS["admin"], uuid4())


@pytest.mark.parametrize(
    ("version", "status", "stage"),
    [
        (1, "pending", "awaiting_payment"),
        (2, "processing", "awaiting_acceptance"),
        (3, "processing", "in_progress"),
    ],
)
def test_get_order_at_a_version_shows_the_past(
    memory_app: LedgerApp, version: int, status: str, stage: str
) -> None:
    order_id = place_and_pay(memory_app)
    for caller in (CLIENT, AUDITOR):
        then = memory_app.get_order(caller, order_id, version=version)
        assert (then.version, then.status, then.stage) == (version, status, stage)
    now = memory_app.get_order(CLIENT, order_id)
    assert (now.version, now.stage) == (3, "in_progress")


@pytest.mark.parametrize("version", [0, -1, 4, 100])
def test_a_version_out_of_range_is_not_found(memory_app: LedgerApp, version: int) -> None:
    order_id = place_and_pay(memory_app)
    with pytest.raises(NotFound):
        memory_app.get_order(CLIENT, order_id, version=version)


@pytest.mark.parametrize("reader", READERS)
def test_parties_and_staff_see_the_payment(memory_app: LedgerApp, reader: str) -> None:
    order_id = place_and_pay(memory_app)
    payment_id = payment_id_for(order_id)
    payment = memory_app.get_payment(READERS[reader], payment_id)
    assert (payment.id, payment.order_id, payment.status) == (payment_id, order_id, "success")
    assert (payment.amount, payment.transaction_id) == (PACKAGE.price, "tx-9")


def test_a_stranger_is_told_the_payment_does_not_exist(memory_app: LedgerApp) -> None:
    order_id = place_and_pay(memory_app)
    with pytest.raises(NotFound):
        memory_app.get_payment(STRANGER, payment_id_for(order_id))


def test_payment_lookups_of_what_is_no_payment_are_not_found(memory_app: LedgerApp) -> None:
    order_id = place(memory_app)
    with pytest.raises(NotFound):
        memory_app.get_payment(CLIENT, payment_id_for(order_id))  # none yet
    with pytest.raises(NotFound):
        memory_app.get_payment(CLIENT, order_id)  # an order's id is not a payment's
    with pytest.raises(NotFound):
        memory_app.get_payment(CLIENT, payment_id_for(uuid4()))  # no such order


def test_an_auditor_creates_neither_gigs_nor_orders(memory_app: LedgerApp) -> None:
    gig_id = memory_app.create_gig(FREELANCER, "Logo design", [PACKAGE]).aggregate.id
    end = memory_app.recorder.max_notification_id()
    with pytest.raises(Forbidden):
        memory_app.create_gig(AUDITOR, "Audit special", [PACKAGE])
    with pytest.raises(Forbidden):
        memory_app.place_order(AUDITOR, gig_id, "standard")
    assert memory_app.recorder.max_notification_id() == end


def test_users_and_admins_create(memory_app: LedgerApp) -> None:
    admin = READERS["admin"]
    gig = memory_app.create_gig(admin, "Admin's gig", [PACKAGE]).aggregate
    order = memory_app.place_order(CLIENT, gig.id, "standard").aggregate
    assert (gig.freelancer_id, order.client_id, order.freelancer_id) == (
        admin.id,
        CLIENT.id,
        admin.id,
    )
