"""Two writers, one wins: racing commands on one aggregate never both take effect.

Each race is run by two threads released together by a barrier, either each with its own
``LedgerApp`` (as two processes would be) or sharing one. The loser either loads the
winner's state and is refused at once, or loses the store's (id, version) race and is
decided again on fresh state; either way it gets the domain error, never a half-applied
command. Nothing here sleeps: the threads are joined before the store is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import (
    CLIENT,
    PRICE,
    SUPPORT,
    delivered_order,
    event_names,
    open_gig,
    placed_order,
    race,
    stored_events,
)

from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason
from ledger.errors import Conflict, InvalidTransition
from ledger.service import Done, LedgerApp
from ledger.settings import Settings

ROUNDS = 10
TERMINAL = ("OrderCompleted", "OrderCancelled")

Writers = tuple[LedgerApp, LedgerApp]


@pytest.fixture(params=["own apps", "shared app"])
def writers(
    request: pytest.FixtureRequest, stored_app: LedgerApp, settings: Settings, clock: FakeClock
) -> Iterator[Writers]:
    """The two racing writers' apps: two more apps on the same database, or one shared."""
    if request.param == "shared app":
        yield stored_app, stored_app
        return
    with open_app(settings, clock) as first, open_app(settings, clock) as second:
        yield first, second


def the_winner(outcomes: list[Any], loser_error: type[Exception]) -> int:
    """The index of the one contender that got ``Done``; the other got ``loser_error``."""
    winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, Done)]
    assert len(winners) == 1, outcomes
    loser = outcomes[1 - winners[0]]
    assert type(loser) is loser_error, repr(loser)
    return winners[0]


def assert_contiguous_versions(app: LedgerApp, aggregate_id: UUID) -> None:
    versions = [e.originator_version for e in stored_events(app, aggregate_id)]
    assert versions == list(range(1, len(versions) + 1))


def test_completion_and_policy_cancellation_race_one_wins(
    stored_app: LedgerApp, writers: Writers
) -> None:
    completer, canceller = writers
    gig_id = open_gig(stored_app)
    for _ in range(ROUNDS):
        order_id = delivered_order(stored_app, gig_id)
        winner = the_winner(
            race(
                partial(completer.complete_order, CLIENT, order_id),
                partial(canceller.cancel_order, SUPPORT, order_id, CancelReason.POLICY_VIOLATION),
            ),
            InvalidTransition,
        )
        names = event_names(stored_app, order_id)
        assert [n for n in names if n in TERMINAL] == [TERMINAL[winner]]
        assert_contiguous_versions(stored_app, order_id)
        payment_id = payment_id_for(order_id)
        assert_contiguous_versions(stored_app, payment_id)
        refunds = [n for n in event_names(stored_app, payment_id) if n == "RefundRecorded"]
        cancelled = TERMINAL[winner] == "OrderCancelled"
        assert len(refunds) == (1 if cancelled else 0)
        order = stored_app.get_order(CLIENT, order_id)
        payment = stored_app.get_payment(CLIENT, payment_id_for(order_id))
        assert (order.status, order.refunded, payment.refunded) == (
            ("cancelled", PRICE, PRICE) if cancelled else ("completed", 0, 0)
        )


def test_two_payments_for_one_order_race_one_wins(stored_app: LedgerApp, writers: Writers) -> None:
    gig_id = open_gig(stored_app)
    orders = [placed_order(stored_app, gig_id) for _ in range(ROUNDS)]
    for order_id in orders:
        the_winner(
            race(*(partial(w.create_payment, CLIENT, order_id, "credit_card") for w in writers)),
            Conflict,
        )
        names = event_names(stored_app, payment_id_for(order_id))
        assert names == ["PaymentCreated", "CheckoutOpened"]
    created = [
        n.originator_id
        for n in stored_app.recorder.select_notifications(start=1, limit=10_000)
        if n.topic.endswith("PaymentCreated")
    ]
    assert sorted(created) == sorted(payment_id_for(o) for o in orders)
