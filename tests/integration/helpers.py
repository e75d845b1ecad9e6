"""Callers, a gig and orders in a chosen state, shared by the integration tests.

Each helper drives the public ``LedgerApp`` commands only, so a test's set-up goes through
the same guards and the same store as what it checks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import Package
from ledger.service import LedgerApp

FREELANCER = Caller("freelancer-1")
CLIENT = Caller("client-1")
SUPPORT = Caller("support-1", frozenset({"support"}))
GATEWAY = Caller.system("gateway")

PRICE = 12_345
"""The ``standard`` package's price in centimes; at the default 20 % the fee is 2,469."""

PACKAGES = (
    Package("basic", 5_000, 2, 0, "A logo"),
    Package("standard", PRICE, 5, 1, "A logo and a colour palette"),
)


def open_gig(app: LedgerApp) -> UUID:
    return app.create_gig(FREELANCER, "Logo design", PACKAGES).aggregate.id


def placed_order(app: LedgerApp, gig_id: UUID) -> UUID:
    return app.place_order(CLIENT, gig_id, "standard").aggregate.id


def paid_order(app: LedgerApp, gig_id: UUID) -> UUID:
    """An order whose payment the gateway confirmed: processing, awaiting acceptance."""
    order_id = placed_order(app, gig_id)
    app.create_payment(CLIENT, order_id, "credit_card")
    app.confirm_payment(GATEWAY, payment_id_for(order_id), f"txn-{order_id}", PRICE, "MAD")
    return order_id


def delivered_order(app: LedgerApp, gig_id: UUID) -> UUID:
    order_id = paid_order(app, gig_id)
    app.accept_order(FREELANCER, order_id)
    app.deliver_order(FREELANCER, order_id, "Here is your logo")
    return order_id


def stored_events(app: LedgerApp, aggregate_id: UUID) -> list[DomainEventProtocol[UUID]]:
    """The aggregate's events as stored (read from the store, not from memory)."""
    return list(app.events.get(aggregate_id))


def event_names(app: LedgerApp, aggregate_id: UUID) -> list[str]:
    return [type(e).__name__ for e in stored_events(app, aggregate_id)]


def max_position(app: LedgerApp) -> int:
    position = app.recorder.max_notification_id()
    assert position is not None
    return position


def race(*contenders: Callable[[], Any]) -> list[Any]:
    """Run the contenders in threads released together; each one's result or exception.

    The barrier has a timeout so that a contender that never arrives breaks the race with
    ``BrokenBarrierError`` instead of hanging the test run.
    """
    barrier = Barrier(len(contenders), timeout=30)

    def run(contender: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return contender()
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=len(contenders)) as pool:
        return list(pool.map(run, contenders))
