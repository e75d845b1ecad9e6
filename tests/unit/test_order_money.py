"""The order's own money guards: what escrow holds after a refund the gateway made on its
own, and when a freelancer's released share may clear. In memory, no store."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from tests.conftest import FakeClock
from tests.integration.helpers import CLIENT, GATEWAY, PRICE, SUPPORT, delivered_order, open_gig

from ledger.actors import Actor
from ledger.domain.order import Order
from ledger.domain.payment import payment_id_for
from ledger.domain.values import DisputeOutcome
from ledger.errors import Forbidden, InvalidTransition, ValidationFailed
from ledger.money import fee_of
from ledger.service import LedgerApp

GATEWAY_ACTOR = Actor("system:gateway", "gateway")
CLOCK_ACTOR = Actor("system:clock", "clock")


@pytest.fixture
def order(memory_app: LedgerApp) -> Order:
    order_id = delivered_order(memory_app, open_gig(memory_app))
    found: Order = memory_app.repository.get(order_id)
    return found


def test_only_the_gateway_takes_a_gateway_refund(order: Order, clock: FakeClock) -> None:
    with pytest.raises(Forbidden):
        order.take_gateway_refund(100, Actor("support-1", "support"), clock.now)


@pytest.mark.parametrize("amount", [0, -1, PRICE + 1, True])
def test_a_gateway_refund_is_at_most_what_is_held(
    order: Order, clock: FakeClock, amount: int
) -> None:
    with pytest.raises(ValidationFailed):
        order.take_gateway_refund(amount, GATEWAY_ACTOR, clock.now)


def test_a_partial_gateway_refund_lowers_the_payout_and_its_fee(
    order: Order, clock: FakeClock
) -> None:
    order.take_gateway_refund(1_000, GATEWAY_ACTOR, clock.now)
    assert (order.status, order.held) == ("processing", PRICE - 1_000)
    order.complete(Actor(CLIENT.id, "client"), clock.now)
    assert order.fee == fee_of(PRICE - 1_000, order.fee_rate_bp)
    assert order.fee + order.net == PRICE - 1_000


def test_a_split_must_leave_something_of_what_is_held(order: Order, clock: FakeClock) -> None:
    order.take_gateway_refund(PRICE - 100, GATEWAY_ACTOR, clock.now)
    order.open_dispute("half done", Actor(CLIENT.id, "client"), clock.now)
    support = Actor(SUPPORT.id, "support")
    with pytest.raises(ValidationFailed):
        order.resolve_dispute(DisputeOutcome.SPLIT, 100, support, clock.now)
    assert order.resolve_dispute(DisputeOutcome.SPLIT, 40, support, clock.now) == 40
    assert order.fee + order.net == 60


def test_no_gateway_refund_once_the_order_is_over(order: Order, clock: FakeClock) -> None:
    order.complete(Actor(CLIENT.id, "client"), clock.now)
    with pytest.raises(InvalidTransition):
        order.take_gateway_refund(100, GATEWAY_ACTOR, clock.now)


def test_funds_clear_once_and_only_when_due(order: Order, clock: FakeClock) -> None:
    with pytest.raises(InvalidTransition, match="nothing"):
        order.clear_funds(timedelta(0), CLOCK_ACTOR, clock.now)
    order.complete(Actor(CLIENT.id, "client"), clock.now)
    with pytest.raises(Forbidden):
        order.clear_funds(timedelta(0), GATEWAY_ACTOR, clock.now)
    with pytest.raises(InvalidTransition, match="clear at"):
        order.clear_funds(timedelta(days=1), CLOCK_ACTOR, clock.now)
    order.clear_funds(timedelta(days=1), CLOCK_ACTOR, clock.advance(days=1))
    assert order.funds_cleared_at == clock.now
    with pytest.raises(InvalidTransition, match="already"):
        order.clear_funds(timedelta(days=1), CLOCK_ACTOR, clock.now)


def test_the_gateway_refund_is_stored_with_the_payment(memory_app: LedgerApp) -> None:
    order_id: UUID = delivered_order(memory_app, open_gig(memory_app))
    done = memory_app.record_gateway_refund(
        GATEWAY, payment_id_for(order_id), 500, "MAD", "wh-1", "r-1"
    )
    assert done.aggregate.refunded == 500
    assert memory_app.get_order(SUPPORT, order_id).held == PRICE - 500
