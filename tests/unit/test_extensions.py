"""Delivery extensions on the Order itself: who asks and who answers, when, how far the due
date moves, and that the lateness timer follows the new date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from ledger.actors import Actor
from ledger.domain.order import MAX_EXTENSION_DAYS, Order
from ledger.domain.values import Package, Stage
from ledger.errors import Forbidden, InvalidTransition, ValidationFailed

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CLIENT, FREELANCER = Actor("client-1", "client"), Actor("freelancer-1", "freelancer")
GATEWAY, CLOCK = Actor("system:gateway", "gateway"), Actor("system:clock", "clock")


def placed_order() -> Order:
    return Order(
        order_id=uuid4(),
        client_id="client-1",
        gig_id=uuid4(),
        freelancer_id="freelancer-1",
        package=Package("basic", 10_000, 3, 1, "A logo"),
        fee_rate_bp=2_000,
        requirements=None,
        actor=CLIENT,
        timestamp=NOW,
    )


def paid_order() -> Order:
    order = placed_order()
    order.confirm_payment(uuid4(), 10_000, GATEWAY, NOW)
    return order


def test_an_accepted_extension_moves_the_due_date_by_its_days() -> None:
    order = paid_order()
    due = order.due_at
    assert due == NOW + timedelta(days=3)
    order.request_extension(4, "The client added a second logo", FREELANCER, NOW)
    assert order.extension == {"days": 4, "reason": "The client added a second logo",
                               "requested_at": NOW}  # fmt: skip
    assert order.due_at == due  # asking moves nothing
    order.answer_extension(True, CLIENT, NOW + timedelta(hours=1))
    assert (order.due_at, order.extension) == (due + timedelta(days=4), None)


def test_a_declined_extension_leaves_the_due_date() -> None:
    order = paid_order()
    due = order.due_at
    order.request_extension(2, "More time please", FREELANCER, NOW)
    order.answer_extension(False, CLIENT, NOW)
    assert (order.due_at, order.extension) == (due, None)
    order.request_extension(1, "Once more", FREELANCER, NOW)  # a new request may follow
    assert order.extension is not None


def test_the_lateness_timer_follows_the_new_date() -> None:
    order = paid_order()
    late = NOW + timedelta(days=3, minutes=1)
    order.mark_late(CLOCK, late)
    order.request_extension(5, "Illness", FREELANCER, late)
    order.answer_extension(True, CLIENT, late)
    assert order.marked_late_at is None
    with pytest.raises(InvalidTransition):
        order.mark_late(CLOCK, late + timedelta(days=4))  # before the new due date
    order.mark_late(CLOCK, late + timedelta(days=5))
    assert order.marked_late_at is not None


@pytest.mark.parametrize("days", [0, -1, MAX_EXTENSION_DAYS + 1, True, 2.5])
def test_days_are_one_to_thirty(days: object) -> None:
    with pytest.raises(ValidationFailed):
        paid_order().request_extension(days, "Why not", FREELANCER, NOW)  # type: ignore[arg-type]


def test_only_the_freelancer_asks_and_only_the_client_answers() -> None:
    order = paid_order()
    with pytest.raises(Forbidden):
        order.request_extension(2, "I want more", CLIENT, NOW)
    with pytest.raises(Forbidden):
        order.request_extension(2, "Someone else", Actor("freelancer-2", "freelancer"), NOW)
    order.request_extension(2, "Please", FREELANCER, NOW)
    with pytest.raises(Forbidden):
        order.answer_extension(True, FREELANCER, NOW)


def test_one_request_at_a_time_and_none_once_delivered_or_unpaid() -> None:
    order = paid_order()
    order.request_extension(2, "Please", FREELANCER, NOW)
    with pytest.raises(InvalidTransition, match="already waiting"):
        order.request_extension(3, "Please again", FREELANCER, NOW)
    order.answer_extension(True, CLIENT, NOW)
    with pytest.raises(InvalidTransition, match="no extension request"):
        order.answer_extension(True, CLIENT, NOW)
    order.accept(FREELANCER, NOW)
    order.deliver("Done", FREELANCER, NOW)
    assert order.stage == Stage.DELIVERED
    with pytest.raises(InvalidTransition):
        order.request_extension(1, "After delivery", FREELANCER, NOW)
    with pytest.raises(InvalidTransition):
        placed_order().request_extension(1, "Before payment", FREELANCER, NOW)
