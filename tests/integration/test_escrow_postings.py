"""Each posting rule of the escrow ledger (docs/architecture.md, "Escrow postings") on its own,
on both stores: the commands of one order's life, then the journal entries the projection wrote.

Amounts are centimes read straight from ``escrow_postings``; the 20 % default fee on
``PRICE`` (123.45 MAD) is 24.69 MAD.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import pytest
from tests.conftest import FakeClock
from tests.integration.helpers import (
    CLIENT,
    FREELANCER,
    GATEWAY,
    PRICE,
    SUPPORT,
    delivered_order,
    open_gig,
    paid_order,
    placed_order,
)
from tests.integration.projection_helpers import dump, open_runner, rebuild_all

from ledger.clock import iso
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, DisputeOutcome, OrderStatus
from ledger.gateway.sandbox import Sandbox
from ledger.money import fee_of, from_centimes
from ledger.service import LedgerApp
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

FEE = fee_of(PRICE, 2_000)
NET = PRICE - FEE
GW, ESCROW, FEES = "assets:gateway", "liabilities:escrow", "revenue:fees"
PAYEE = f"liabilities:freelancer:{FREELANCER.id}"
CAPTURE = [(GW, PRICE, 0), (ESCROW, 0, PRICE)]
RELEASE = [(ESCROW, PRICE, 0), (PAYEE, 0, NET), (FEES, 0, FEE)]
Lines = list[tuple[str, int, int]]


class ManualRefunds(Sandbox):
    """YouCanPay's way: refunds are asked for, made by hand, then confirmed."""

    refunds_at_once = False


@pytest.fixture
def app(stored_app: LedgerApp) -> LedgerApp:
    return stored_app


@pytest.fixture
def runner(app: LedgerApp) -> Iterator[ProjectionRunner]:
    with open_runner(app) as runner:
        yield runner


@pytest.fixture
def gig(app: LedgerApp) -> UUID:
    return open_gig(app)


def entries(runner: ProjectionRunner, order_id: UUID) -> list[Lines]:
    """The order's journal entries, oldest first, each as (account, debit, credit) lines."""
    runner.run_once()
    rows = runner.db.read(
        "SELECT p.entry_id, p.account, p.debit, p.credit FROM escrow_postings p"
        " JOIN escrow_entries e ON e.id = p.entry_id WHERE e.order_id = :order"
        " ORDER BY p.position, p.line",
        {"order": str(order_id)},
    )
    grouped: dict[str, Lines] = {}
    for row in rows:
        grouped.setdefault(row["entry_id"], []).append(
            (row["account"], int(row["debit"]), int(row["credit"]))
        )
    return list(grouped.values())


def refund(amount: int) -> Lines:
    return [(ESCROW, amount, 0), (GW, 0, amount)]


def balances(runner: ProjectionRunner) -> dict[str, int]:
    runner.run_once()
    accounts = ReadModels(runner.db).escrow.accounts()
    return {a["account"]: int(a["balance"] * 100) for a in accounts}


def test_no_money_no_entries(app: LedgerApp, runner: ProjectionRunner, gig: UUID) -> None:
    withdrawn = placed_order(app, gig)
    app.cancel_order(CLIENT, withdrawn, CancelReason.CLIENT_WITHDREW)
    declined = placed_order(app, gig)
    app.create_payment(CLIENT, declined, "credit_card")
    app.fail_payment(GATEWAY, payment_id_for(declined), "card declined")
    assert entries(runner, withdrawn) == entries(runner, declined) == []
    assert balances(runner) == {}


def test_payment_succeeded_captures_into_escrow(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = paid_order(app, gig)
    assert entries(runner, order_id) == [CAPTURE]
    row = runner.db.read("SELECT * FROM escrow_entries")[0]
    assert (row["order_id"], row["payment_id"]) == (str(order_id), str(payment_id_for(order_id)))
    assert row["at"] == iso(app.repository.get(payment_id_for(order_id)).modified_on)
    assert balances(runner) == {GW: PRICE, ESCROW: PRICE}


def test_completion_releases_to_the_freelancer_less_the_fee(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = delivered_order(app, gig)
    app.complete_order(CLIENT, order_id)
    assert entries(runner, order_id) == [CAPTURE, RELEASE]
    assert balances(runner) == {GW: PRICE, ESCROW: 0, PAYEE: NET, FEES: FEE}


@pytest.mark.parametrize("how", ["mutual agreement", "policy violation", "dispute refund"])
def test_a_cancellation_refunds_everything_from_escrow(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID, how: str
) -> None:
    order_id = paid_order(app, gig)
    if how == "mutual agreement":
        app.request_cancellation(CLIENT, order_id, "no longer needed")
        app.accept_cancellation(FREELANCER, order_id)
    elif how == "policy violation":
        app.cancel_order(SUPPORT, order_id, CancelReason.POLICY_VIOLATION, "spam")
    else:
        app.open_dispute(CLIENT, order_id, "nothing delivered")
        app.resolve_dispute(SUPPORT, order_id, DisputeOutcome.REFUND)
    assert entries(runner, order_id) == [CAPTURE, refund(PRICE)]
    assert balances(runner) == {GW: 0, ESCROW: 0}


def test_a_dispute_split_releases_what_the_freelancer_keeps_and_refunds_the_rest(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = delivered_order(app, gig)
    app.open_dispute(CLIENT, order_id, "half done")
    back = 4_000
    app.resolve_dispute(SUPPORT, order_id, DisputeOutcome.SPLIT, back)
    kept_fee = fee_of(PRICE - back, 2_000)
    kept_net = PRICE - back - kept_fee
    release = [(ESCROW, PRICE - back, 0), (PAYEE, 0, kept_net), (FEES, 0, kept_fee)]
    assert entries(runner, order_id) == [CAPTURE, release, refund(back)]
    assert balances(runner) == {GW: PRICE - back, ESCROW: 0, PAYEE: kept_net, FEES: kept_fee}


def test_a_dispute_released_in_full_is_a_completion(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = paid_order(app, gig)
    app.open_dispute(FREELANCER, order_id, "the client went silent")
    app.resolve_dispute(SUPPORT, order_id, DisputeOutcome.RELEASE)
    assert entries(runner, order_id) == [CAPTURE, RELEASE]


def test_a_refund_asked_for_leaves_escrow_only_once_made_at_the_gateway(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    app.gateway = ManualRefunds(b"k" * 32, app.public_url)
    order_id = paid_order(app, gig)
    app.cancel_order(SUPPORT, order_id, CancelReason.POLICY_VIOLATION, "spam")
    assert entries(runner, order_id) == [CAPTURE], "asked for, not yet made"
    assert balances(runner)[ESCROW] == PRICE
    app.confirm_refund(SUPPORT, payment_id_for(order_id), "yc-refund-1")
    assert entries(runner, order_id) == [CAPTURE, refund(PRICE)]
    description = runner.db.read("SELECT description FROM escrow_entries ORDER BY position")
    assert "yc-refund-1" in description[-1]["description"]


def test_a_gateway_refund_while_the_order_runs_shrinks_the_payout(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = delivered_order(app, gig)
    app.record_gateway_refund(GATEWAY, payment_id_for(order_id), 2_345, "MAD", "wh-1", "r-1")
    app.complete_order(CLIENT, order_id)
    held = PRICE - 2_345
    fee = fee_of(held, 2_000)
    release = [(ESCROW, held, 0), (PAYEE, 0, held - fee), (FEES, 0, fee)]
    assert entries(runner, order_id) == [CAPTURE, refund(2_345), release]
    assert balances(runner)[ESCROW] == 0


def test_a_gateway_refund_of_everything_held_cancels_the_order(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = paid_order(app, gig)
    app.record_gateway_refund(GATEWAY, payment_id_for(order_id), PRICE, "MAD", "wh-1", "r-1")
    order = app.get_order(SUPPORT, order_id)
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "refunded_at_gateway")
    assert entries(runner, order_id) == [CAPTURE, refund(PRICE)]
    assert balances(runner) == {GW: 0, ESCROW: 0}


def test_a_gateway_refund_after_the_payout_is_taken_back_from_the_freelancer_and_the_fee(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = delivered_order(app, gig)
    app.complete_order(CLIENT, order_id)
    app.record_gateway_refund(GATEWAY, payment_id_for(order_id), 3_000, "MAD", "wh-1", "r-1")
    from_fee = 600  # 3,000 x 2,469 / 12,345 = 600.0: the fee's share, exactly 20 %
    takeback = [(PAYEE, 3_000 - from_fee, 0), (FEES, from_fee, 0), (GW, 0, 3_000)]
    assert entries(runner, order_id) == [CAPTURE, RELEASE, takeback]
    assert balances(runner) == {
        GW: PRICE - 3_000,
        ESCROW: 0,
        PAYEE: NET - 3_000 + from_fee,
        FEES: FEE - from_fee,
    }
    balance = ReadModels(runner.db).escrow.balance(FREELANCER.id)
    assert balance["pendingClearance"] == from_centimes(NET - 3_000 + from_fee)
    assert balance["available"] == 0, "what was taken back came from what had not cleared"


def test_refunds_after_the_payout_never_take_more_than_was_released(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = delivered_order(app, gig)
    app.complete_order(CLIENT, order_id)
    for number, amount in enumerate((1, 1, 3, PRICE - 5), start=1):
        app.record_gateway_refund(
            GATEWAY, payment_id_for(order_id), amount, "MAD", f"wh-{number}", f"r-{number}"
        )
    assert balances(runner) == {GW: 0, ESCROW: 0, PAYEE: 0, FEES: 0}
    books = ReadModels(runner.db).escrow
    assert books.balance(FREELANCER.id)["pendingClearance"] == 0


def test_a_payment_that_succeeds_after_failing_is_captured_and_given_back(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    order_id = placed_order(app, gig)
    app.create_payment(CLIENT, order_id, "credit_card")
    app.fail_payment(GATEWAY, payment_id_for(order_id), "card declined")
    app.confirm_payment(GATEWAY, payment_id_for(order_id), "tx-late", PRICE, "MAD")
    assert entries(runner, order_id) == [CAPTURE, refund(PRICE)]


def test_released_funds_clear_after_the_clearance_days(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID, clock: FakeClock
) -> None:
    order_id = delivered_order(app, gig)
    app.complete_order(CLIENT, order_id)
    books = ReadModels(runner.db).escrow
    runner.run_once()
    assert books.balance(FREELANCER.id)["pendingClearance"] * 100 == NET
    clock.advance(days=14, seconds=-1)
    assert app.clear_funds(order_id, timedelta(days=14)) is None, "not due yet"
    clock.advance(seconds=1)
    done = app.clear_funds(order_id, timedelta(days=14))
    assert done is not None and done.aggregate.funds_cleared_at == clock.now
    assert app.clear_funds(order_id, timedelta(days=14)) is None, "only once"
    runner.run_once()
    assert books.balance(FREELANCER.id) == {
        "pendingClearance": 0,
        "available": from_centimes(NET),
        "currency": "MAD",
    }
    assert entries(runner, order_id) == [CAPTURE, RELEASE], "clearing moves no money"


def test_nothing_clears_where_nothing_was_released(app: LedgerApp, gig: UUID) -> None:
    order_id = paid_order(app, gig)
    app.open_dispute(CLIENT, order_id, "nothing delivered")
    app.resolve_dispute(SUPPORT, order_id, DisputeOutcome.REFUND)
    assert app.clear_funds(order_id, timedelta(0)) is None


def test_rebuilding_the_books_gives_the_same_entries(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID, clock: FakeClock
) -> None:
    completed = delivered_order(app, gig)
    app.complete_order(CLIENT, completed)
    split = delivered_order(app, gig)
    app.open_dispute(CLIENT, split, "half done")
    app.resolve_dispute(SUPPORT, split, DisputeOutcome.SPLIT, 1_001)
    runner.run_once()
    clock.advance(days=15)
    app.clear_funds(completed, timedelta(days=14))
    app.record_gateway_refund(GATEWAY, payment_id_for(completed), 99, "MAD", "wh-9", "r-9")
    runner.run_once()
    tables = runner.projections["escrow"].tables
    incremental = {t: rows for t, rows in dump(runner).items() if t in tables}
    assert incremental["escrow_entries"], "the books are not empty"
    assert {t: rows for t, rows in rebuild_all(runner).items() if t in tables} == incremental


def test_a_release_that_leaves_the_freelancer_nothing_is_not_waiting_to_clear(
    app: LedgerApp, runner: ProjectionRunner, gig: UUID
) -> None:
    app.fee_rate_bp = 10_000  # a 100 % fee, which the settings allow
    order_id = delivered_order(app, gig)
    app.complete_order(CLIENT, order_id)
    assert entries(runner, order_id) == [CAPTURE, [(ESCROW, PRICE, 0), (FEES, 0, PRICE)]]
    books = ReadModels(runner.db).escrow
    assert books.orders_to_clear("9999-12-31T00:00:00.000000Z") == []
