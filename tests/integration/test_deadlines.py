"""The deadlines the clock enforces on orders (issue #8), on both stores and a fake clock:
a delivery left unanswered completes, a cancellation request left unanswered is accepted,
an order past its due date is marked late. Each is written once, with its reason, however
often and from however many workers the timers run.

``PRICE`` is the ``standard`` package (5 delivery days); the 20 % fee on it is 24.69 MAD.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import (
    CLIENT,
    FREELANCER,
    PRICE,
    delivered_order,
    event_names,
    max_position,
    open_gig,
    paid_order,
    race,
    stored_events,
)
from tests.integration.projection_helpers import open_runner

from api.runtime.timers import Timer, auto_completion, cancellation_acceptance, lateness
from ledger.actors import Actor
from ledger.domain.order import Order
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, Stage
from ledger.errors import Forbidden
from ledger.money import fee_of, from_centimes
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

AUTO_COMPLETE = timedelta(days=3)
ANSWER = timedelta(hours=48)
DELIVERY_DAYS = 5
CLOCK = Actor("system:clock", "clock")
JUST_BEFORE = {"seconds": -1}


@pytest.fixture
def app(stored_app: LedgerApp) -> LedgerApp:
    return stored_app


@pytest.fixture
def gig(app: LedgerApp) -> UUID:
    return open_gig(app)


def order_of(app: LedgerApp, order_id: UUID) -> Order:
    order = app.repository.get(order_id)
    assert isinstance(order, Order)
    return order


def last_event(app: LedgerApp, order_id: UUID, name: str) -> Any:
    return [e for e in stored_events(app, order_id) if type(e).__name__ == name][-1]


def requested(app: LedgerApp, gig: UUID, by: Any = CLIENT) -> UUID:
    """A paid, accepted order whose cancellation ``by`` asked for."""
    order_id = paid_order(app, gig)
    app.accept_order(FREELANCER, order_id)
    app.request_cancellation(by, order_id, "no longer needed")
    return order_id


def nothing_stored(app: LedgerApp, act: Callable[[], object]) -> None:
    head = max_position(app)
    assert act() is None
    assert max_position(app) == head


# -- a delivery left unanswered ---------------------------------------------------------------


def test_a_delivery_unanswered_for_the_waiting_period_completes_with_the_reason(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    order_id = delivered_order(app, gig)
    clock.advance(days=3, **JUST_BEFORE)
    nothing_stored(app, lambda: app.auto_complete(order_id, AUTO_COMPLETE))
    clock.advance(seconds=1)
    done = app.auto_complete(order_id, AUTO_COMPLETE)
    assert done is not None and done.position == max_position(app)
    completed = last_event(app, order_id, "OrderCompleted")
    assert (completed.reason, completed.actor, completed.timestamp) == (
        "delivery_unanswered",
        CLOCK,
        clock.now,
    )
    order = order_of(app, order_id)
    assert (order.status, order.stage, order.released_at) == ("completed", "closed", clock.now)
    nothing_stored(app, lambda: app.auto_complete(order_id, AUTO_COMPLETE))


def test_the_clock_s_completion_moves_the_money_as_the_client_s_does(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    by_client, by_clock = delivered_order(app, gig), delivered_order(app, gig)
    app.complete_order(CLIENT, by_client)
    clock.advance(days=3)
    assert app.auto_complete(by_clock, AUTO_COMPLETE) is not None
    mine, its = (last_event(app, o, "OrderCompleted") for o in (by_client, by_clock))
    assert (its.fee, its.net) == (mine.fee, mine.net) == (fee_of(PRICE, 2_000), PRICE - mine.fee)
    assert getattr(mine, "reason", None) is None
    with open_runner(app) as runner:
        runner.run_once()
        books = ReadModels(runner.db).escrow.accounts()
    balances = {a["account"]: a["balance"] for a in books}
    assert balances["liabilities:escrow"] == 0
    assert balances[f"liabilities:freelancer:{FREELANCER.id}"] == from_centimes(2 * mine.net)
    assert balances["revenue:fees"] == from_centimes(2 * mine.fee)


def test_completions_and_acceptances_stored_before_reasons_existed_still_replay(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    completed = delivered_order(app, gig)
    app.complete_order(CLIENT, completed)
    agreed = requested(app, gig)
    app.accept_cancellation(FREELANCER, agreed)
    for order_id in (completed, agreed):
        replayed: Any = None
        for event in stored_events(app, order_id):
            record = app.mapper.to_stored_event(event)
            state = json.loads(record.state)
            if record.topic.endswith(("OrderCompleted", "CancellationAccepted")):
                del state["reason"]  # as an older release stored it
            older = replace(record, state=json.dumps(state).encode())
            replayed = app.mapper.to_domain_event(older).mutate(replayed)
        assert (replayed.status, replayed.version) == (
            order_of(app, order_id).status,
            order_of(app, order_id).version,
        )


def test_the_wait_counts_from_the_latest_delivery(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    order_id = delivered_order(app, gig)
    clock.advance(days=2)
    app.request_revision(CLIENT, order_id, "bigger")
    app.deliver_order(FREELANCER, order_id, "bigger now")
    clock.advance(days=2)
    nothing_stored(app, lambda: app.auto_complete(order_id, AUTO_COMPLETE))
    clock.advance(days=1)
    assert app.auto_complete(order_id, AUTO_COMPLETE) is not None


@pytest.mark.parametrize("answer", ["declined", "withdrawn"])
def test_a_refused_cancellation_request_on_a_delivery_restarts_the_wait(
    app: LedgerApp, gig: UUID, clock: FakeClock, answer: str
) -> None:
    order_id = delivered_order(app, gig)
    clock.advance(days=2)
    app.request_cancellation(CLIENT, order_id, "not what I asked for")
    clock.advance(days=1)
    nothing_stored(app, lambda: app.auto_complete(order_id, AUTO_COMPLETE))  # not delivered
    if answer == "declined":
        app.decline_cancellation(FREELANCER, order_id)
    else:
        app.withdraw_cancellation(CLIENT, order_id)
    assert order_of(app, order_id).stage == Stage.DELIVERED
    clock.advance(days=3, **JUST_BEFORE)
    nothing_stored(app, lambda: app.auto_complete(order_id, AUTO_COMPLETE))
    clock.advance(seconds=1)
    assert app.auto_complete(order_id, AUTO_COMPLETE) is not None


def test_orders_not_delivered_are_never_completed_by_the_clock(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    working = paid_order(app, gig)
    revising = delivered_order(app, gig)
    app.request_revision(CLIENT, revising, "bigger")
    clock.advance(days=30)
    for order_id in (working, revising):
        nothing_stored(app, lambda o=order_id: app.auto_complete(o, AUTO_COMPLETE))


# -- a cancellation request left unanswered ---------------------------------------------------


@pytest.mark.parametrize("by", [CLIENT, FREELANCER], ids=["client asked", "freelancer asked"])
def test_an_unanswered_cancellation_request_is_accepted_and_refunded(
    app: LedgerApp, gig: UUID, clock: FakeClock, by: Any
) -> None:
    order_id = requested(app, gig, by)
    clock.advance(hours=48, **JUST_BEFORE)
    nothing_stored(app, lambda: app.auto_accept_cancellation(order_id, ANSWER))
    clock.advance(seconds=1)
    done = app.auto_accept_cancellation(order_id, ANSWER)
    assert done is not None and done.position == max_position(app)
    assert event_names(app, order_id)[-2:] == ["CancellationAccepted", "OrderCancelled"]
    accepted = last_event(app, order_id, "CancellationAccepted")
    assert (accepted.reason, accepted.actor) == ("cancellation_unanswered", CLOCK)
    cancelled = last_event(app, order_id, "OrderCancelled")
    assert (cancelled.reason, cancelled.refund, cancelled.actor) == (
        CancelReason.MUTUAL_AGREEMENT,
        PRICE,
        CLOCK,
    )
    payment = app.repository.get(payment_id_for(order_id))
    assert payment.refunded == PRICE
    assert event_names(app, payment.id)[-1] == "RefundRecorded"
    refunded = stored_events(app, payment.id)[-1]
    assert (refunded.reason, refunded.actor) == ("mutual_agreement", CLOCK)
    nothing_stored(app, lambda: app.auto_accept_cancellation(order_id, ANSWER))


def test_an_answered_request_is_left_alone(app: LedgerApp, gig: UUID, clock: FakeClock) -> None:
    declined, withdrawn = requested(app, gig), requested(app, gig)
    app.decline_cancellation(FREELANCER, declined)
    app.withdraw_cancellation(CLIENT, withdrawn)
    clock.advance(days=3)
    for order_id in (declined, withdrawn):
        nothing_stored(app, lambda o=order_id: app.auto_accept_cancellation(o, ANSWER))
        assert order_of(app, order_id).stage == Stage.IN_PROGRESS


def test_a_second_request_gets_its_own_48_hours(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    order_id = requested(app, gig)
    clock.advance(hours=40)
    app.decline_cancellation(FREELANCER, order_id)
    clock.advance(hours=1)
    app.request_cancellation(CLIENT, order_id, "really, no longer needed")
    clock.advance(hours=47)
    nothing_stored(app, lambda: app.auto_accept_cancellation(order_id, ANSWER))
    clock.advance(hours=1)
    assert app.auto_accept_cancellation(order_id, ANSWER) is not None


# -- an order past its due date ---------------------------------------------------------------


def test_an_order_past_due_is_marked_late_once_with_nothing_else_changed(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    order_id = paid_order(app, gig)
    due_at = order_of(app, order_id).due_at
    assert due_at == clock.now + timedelta(days=DELIVERY_DAYS)
    clock.now = due_at
    nothing_stored(app, lambda: app.mark_late(order_id))  # due *at* that moment, not past
    clock.advance(seconds=1)
    done = app.mark_late(order_id)
    assert done is not None
    marked = last_event(app, order_id, "OrderMarkedLate")
    assert (marked.reason, marked.due_at, marked.actor) == ("past_due", due_at, CLOCK)
    order = order_of(app, order_id)
    assert (order.status, order.stage, order.marked_late_at) == (
        "processing",
        "awaiting_acceptance",
        clock.now,
    )
    clock.advance(days=1)
    nothing_stored(app, lambda: app.mark_late(order_id))


def test_a_late_order_delivered_later_goes_on_as_usual_and_is_never_marked_again(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    order_id = paid_order(app, gig)
    app.accept_order(FREELANCER, order_id)
    clock.advance(days=DELIVERY_DAYS, hours=1)
    assert app.mark_late(order_id) is not None
    app.deliver_order(FREELANCER, order_id, "sorry, here it is")
    nothing_stored(app, lambda: app.mark_late(order_id))
    app.request_revision(CLIENT, order_id, "bigger")
    nothing_stored(app, lambda: app.mark_late(order_id))
    app.deliver_order(FREELANCER, order_id, "bigger now")
    clock.advance(days=3)
    assert app.auto_complete(order_id, AUTO_COMPLETE) is not None
    assert event_names(app, order_id).count("OrderMarkedLate") == 1


def test_orders_delivered_in_time_or_not_working_are_never_late(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    delivered = delivered_order(app, gig)
    asked = requested(app, gig)
    app.open_dispute(CLIENT, disputed := paid_order(app, gig), "no word from you")
    clock.advance(days=DELIVERY_DAYS + 1)
    for order_id in (delivered, asked, disputed):
        nothing_stored(app, lambda o=order_id: app.mark_late(o))


@pytest.mark.parametrize("who", ["client", "freelancer", "support", "gateway"])
def test_only_the_clock_enforces_deadlines(
    app: LedgerApp, gig: UUID, clock: FakeClock, who: str
) -> None:
    delivered, asked, working = three_due(app, gig, clock)
    actor, now = Actor(f"{who}-1", who), clock.now
    for refused in (
        lambda: order_of(app, delivered).auto_complete(AUTO_COMPLETE, actor, now),
        lambda: order_of(app, asked).auto_accept_cancellation(ANSWER, actor, now),
        lambda: order_of(app, working).mark_late(actor, now),
    ):
        with pytest.raises(Forbidden):
            refused()


# -- the timers: candidates from the read models, stale reads, two workers, restarts ----------


def deadline_timers(app: LedgerApp, runner: ProjectionRunner, clock: FakeClock) -> list[Timer]:
    models = ReadModels(runner.db)
    return [
        auto_completion(app, models, AUTO_COMPLETE, clock),
        cancellation_acceptance(app, models, ANSWER, clock),
        lateness(app, models, clock),
    ]


def run_timers(timers: list[Timer]) -> list[int]:
    return [timer() for timer in timers]


def deadline_events(app: LedgerApp, *order_ids: UUID) -> dict[str, int]:
    """How many deadline events each kind the orders hold."""
    names = [n for o in order_ids for n in event_names(app, o)]
    return {
        kind: names.count(kind)
        for kind in ("OrderCompleted", "CancellationAccepted", "OrderMarkedLate")
    }


@pytest.fixture
def runner(app: LedgerApp) -> Iterator[ProjectionRunner]:
    with open_runner(app) as runner:
        yield runner


def three_due(app: LedgerApp, gig: UUID, clock: FakeClock) -> tuple[UUID, UUID, UUID]:
    """A delivered order, a requested cancellation and a working order, all due now."""
    delivered, asked, working = delivered_order(app, gig), requested(app, gig), paid_order(app, gig)
    clock.advance(days=DELIVERY_DAYS, seconds=1)
    return delivered, asked, working


def test_the_timers_act_on_what_is_due_and_a_stale_read_model_changes_nothing(
    app: LedgerApp, gig: UUID, clock: FakeClock, runner: ProjectionRunner
) -> None:
    orders = three_due(app, gig, clock)
    timers = deadline_timers(app, runner, clock)
    runner.run_once()
    assert run_timers(timers) == [1, 1, 1]
    head = max_position(app)
    assert run_timers(timers) == [0, 0, 0], "the read model still shows them due"
    assert max_position(app) == head
    runner.run_once()
    assert run_timers(timers) == [0, 0, 0]
    assert deadline_events(app, *orders) == {
        "OrderCompleted": 1,
        "CancellationAccepted": 1,
        "OrderMarkedLate": 1,
    }


def test_the_read_model_shows_candidates_only_while_they_wait(
    app: LedgerApp, gig: UUID, clock: FakeClock, runner: ProjectionRunner
) -> None:
    delivered, asked, working = three_due(app, gig, clock)
    runner.run_once()
    models, now = ReadModels(runner.db), clock.now.isoformat().replace("+00:00", "Z")
    assert models.orders.to_auto_complete(now) == [str(delivered)]
    assert models.orders.cancellations_to_accept(now) == [str(asked)]
    assert models.orders.past_due(now) == [str(working)]
    assert models.orders.to_auto_complete("2026-01-01T00:00:00.000000Z") == []
    run_timers(deadline_timers(app, runner, clock))
    runner.run_once()
    assert models.orders.to_auto_complete(now) == models.orders.cancellations_to_accept(now) == []
    assert models.orders.past_due(now) == []


def test_two_workers_at_once_write_each_deadline_once(
    app: LedgerApp, gig: UUID, clock: FakeClock, runner: ProjectionRunner, settings: Settings
) -> None:
    orders = [o for _ in range(3) for o in three_due(app, gig, clock)]
    runner.run_once()
    with open_app(settings, clock) as other:
        mine, theirs = deadline_timers(app, runner, clock), deadline_timers(other, runner, clock)
        results = race(lambda: run_timers(mine), lambda: run_timers(theirs))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert [a + b for a, b in zip(*results, strict=True)] == [3, 3, 3]
    assert deadline_events(app, *orders) == {
        "OrderCompleted": 3,
        "CancellationAccepted": 3,
        "OrderMarkedLate": 3,
    }


@pytest.mark.parametrize("deadline", ["auto_complete", "auto_accept_cancellation", "mark_late"])
def test_two_workers_racing_on_one_order_store_one_event(
    app: LedgerApp, gig: UUID, clock: FakeClock, settings: Settings, deadline: str
) -> None:
    delivered, asked, working = three_due(app, gig, clock)
    order_id, after = {
        "auto_complete": (delivered, AUTO_COMPLETE),
        "auto_accept_cancellation": (asked, ANSWER),
        "mark_late": (working, None),
    }[deadline]

    def act(ledger: LedgerApp) -> object:
        command = getattr(ledger, deadline)
        return command(order_id) if after is None else command(order_id, after)

    with open_app(settings, clock) as other:
        results = race(lambda: act(app), lambda: act(other))
    assert sorted(r is None for r in results) == [False, True], results
    assert sum(deadline_events(app, order_id).values()) == 1


@pytest.mark.parametrize("first", ["another worker", "the freelancer"])
def test_a_worker_that_read_the_order_just_before_it_was_cancelled_decides_again(
    app: LedgerApp,
    gig: UUID,
    clock: FakeClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    first: str,
) -> None:
    """The clock's worker loads the order (cancellation requested), then, before it loads
    the payment, someone else accepts and refunds: the payment it reads can no longer give
    the refund back. That is a stale read, decided again on fresh state (nothing due), not
    a validation error."""
    order_id = requested(app, gig)
    clock.advance(hours=48)
    with open_app(settings, clock) as worker:
        load_payment = worker._payment
        cut_in = [
            lambda: (
                app.auto_accept_cancellation(order_id, ANSWER)
                if first == "another worker"
                else app.accept_cancellation(FREELANCER, order_id)
            )
        ]

        def payment_after_someone_cut_in(payment_id: UUID) -> Any:
            while cut_in:
                assert cut_in.pop()() is not None
            return load_payment(payment_id)

        monkeypatch.setattr(worker, "_payment", payment_after_someone_cut_in)
        assert worker.auto_accept_cancellation(order_id, ANSWER) is None
    assert event_names(app, order_id).count("OrderCancelled") == 1
    assert app.repository.get(payment_id_for(order_id)).refunded == PRICE


def test_a_worker_restarted_in_between_does_the_rest_and_nothing_twice(
    app: LedgerApp, gig: UUID, clock: FakeClock, settings: Settings
) -> None:
    early_delivery, asked = delivered_order(app, gig), requested(app, gig)
    clock.advance(days=1)
    late_delivery, working = delivered_order(app, gig), paid_order(app, gig)
    clock.advance(days=2)  # the early delivery and the request are due; the rest not yet
    with open_app(settings, clock) as worker, open_runner(worker) as runner:
        runner.run_once()
        assert run_timers(deadline_timers(worker, runner, clock)) == [1, 1, 0]
    # The worker stopped before its read models saw what it did.
    clock.advance(days=DELIVERY_DAYS)
    with open_app(settings, clock) as restarted, open_runner(restarted) as runner:
        runner.run_once()
        timers = deadline_timers(restarted, runner, clock)
        assert run_timers(timers) == [1, 0, 1]
        runner.run_once()
        assert run_timers(timers) == [0, 0, 0]
    assert deadline_events(app, early_delivery, late_delivery) == {
        "OrderCompleted": 2,
        "CancellationAccepted": 0,
        "OrderMarkedLate": 0,
    }
    assert deadline_events(app, asked)["CancellationAccepted"] == 1
    assert deadline_events(app, working)["OrderMarkedLate"] == 1


def test_an_on_time_delivery_sent_back_after_the_due_date_is_not_late(
    app: LedgerApp, gig: UUID, clock: FakeClock
) -> None:
    order_id = paid_order(app, gig)
    app.deliver_order(FREELANCER, order_id, "early")
    clock.advance(days=DELIVERY_DAYS + 1)
    app.request_revision(CLIENT, order_id, "one more thing")
    nothing_stored(app, lambda: app.mark_late(order_id))
