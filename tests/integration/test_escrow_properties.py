"""Property-based checks of the escrow ledger (issue #6): whatever lives a few orders lead,
however their commands interleave, the books stay double-entry, never owe or hold money
they should not, agree with the aggregates to the centime, and rebuild to what the
incremental runs wrote.

Hypothesis draws, step by step, an order and a command for it: mostly one its stage allows,
so orders get through payment, work, cancellation, disputes, gateway refunds (while running
and after the payout) and late payments; sometimes any command at all, whose refusal must
leave the books alone; sometimes the clock (the timers expire payments and clear funds) or a
projection run, after which the books are checked. Half the examples run on a gateway that
only asks for refunds, made by hand and confirmed later (YouCanPay's way), so money can wait
in escrow for a closed order.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import FakeClock, postgres_database
from tests.integration.projection_helpers import GATEWAY, SUPPORT, dump, open_runner, rebuild_all

from api.runtime.timers import funds_clearance, payment_expiry
from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.order import Order
from ledger.domain.payment import Payment, payment_id_for
from ledger.domain.values import CancelReason, DisputeOutcome, OrderStatus, Package, Stage
from ledger.errors import LedgerError
from ledger.gateway.sandbox import Sandbox
from ledger.money import from_centimes
from ledger.service import LedgerApp
from ledger.settings import load_settings
from projections.db import Row
from projections.escrow.projection import EscrowLedger
from projections.escrow.queries import EscrowQueries
from projections.escrow.rules import ESCROW, FEES, balance_of, freelancer_account
from projections.escrow.rules import GATEWAY as GATEWAY_ACCOUNT
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

N_ORDERS = 3
CLEARANCE = timedelta(days=14)
FREELANCERS, CLIENTS = (Caller("ana"), Caller("ben")), (Caller("cara"), Caller("dan"))
PACKAGES = (Package("basic", 9_999, 2, 1, "A logo"), Package("standard", 25_001, 4, 2, "More"))
FEE_PERCENTS = ("20", "0", "100", "12.5")  # hypothesis favours the ends: the common cases
NEXT: dict[str, tuple[str, ...]] = {
    Stage.AWAITING_PAYMENT: ("open_payment",) * 2
    + ("open_cash", "fail", "expire", "withdraw")
    + ("pay",) * 6,
    Stage.AWAITING_CASH_PAYMENT: ("fail", "expire", "withdraw") + ("pay",) * 6,
    Stage.AWAITING_ACCEPTANCE: ("accept", "deliver") * 3 + ("ask_cancel", "dispute", "refund"),
    Stage.IN_PROGRESS: ("deliver",) * 5 + ("ask_cancel", "dispute", "policy", "refund"),
    Stage.DELIVERED: ("complete",) * 5 + ("revise", "ask_cancel", "dispute", "refund"),
    Stage.REVISION_REQUESTED: ("deliver",) * 4 + ("ask_cancel", "dispute", "refund"),
    Stage.CANCELLATION_REQUESTED: ("agree", "decline", "take_back", "dispute", "refund"),
    Stage.IN_DISPUTE: ("release", "refund_all", "split", "split", "refund"),
    Stage.CLOSED: ("refund", "refund", "confirm_refund", "pay", "expire"),
}
"""The commands that can move an order on from each stage (late payments and gateway
refunds included), repeated to favour the way forward; any other is tried now and then."""
ANY = sorted({name for names in NEXT.values() for name in names})


class ManualRefunds(Sandbox):
    """YouCanPay's way: refunds are asked for, made by hand, then confirmed."""

    refunds_at_once = False


def part_of(limit: int, share: int) -> int:
    """``share`` percent of ``limit``; -1 stands for one centime too many."""
    return limit + 1 if share < 0 else limit * share // 100


def payment_of(app: LedgerApp, order_id: UUID) -> Payment | None:
    payment_id = payment_id_for(order_id)
    return app.repository.get(payment_id) if payment_id in app.repository else None


def command(app: LedgerApp, order: Order, name: str, share: int, step: int) -> Callable[[], Any]:
    """The command ``name`` on ``order``, taken by whoever may take it. The gateway's refund
    is the one the ledger waits for, if any; else (odd ``share``) the notice of a refund
    support confirmed by hand; else ``share`` percent of what may still be refunded."""
    oid, pid = order.id, payment_id_for(order.id)
    client, freelancer = Caller(order.client_id), Caller(order.freelancer_id)
    party = (client, freelancer)[share % 2]
    asker, other = (client, freelancer)[:: 1 if order.cancellation_by == "client" else -1]
    payment = payment_of(app, oid)
    queued = [r["amount"] for r in payment.requested_refunds] if payment else []
    if payment and share % 2:
        queued += [
            r["amount"] for r in payment.refunds if r.get("by_hand") and not r.get("noticed")
        ]
    refund = queued[0] if queued else part_of(payment.refundable if payment else 1, share)

    def resolve(outcome: DisputeOutcome, amount: int | None = None) -> Any:
        return app.resolve_dispute(SUPPORT, oid, outcome, amount)

    return {
        "open_payment": lambda: app.create_payment(client, oid, "credit_card"),
        "open_cash": lambda: app.create_payment(client, oid, "cashplus"),
        "pay": lambda: app.confirm_payment(GATEWAY, pid, f"tx-{oid}", order.total, "MAD"),
        "fail": lambda: app.fail_payment(GATEWAY, pid, "card declined"),
        "expire": lambda: app.expire_payment(pid),
        "withdraw": lambda: app.cancel_order(client, oid, CancelReason.CLIENT_WITHDREW),
        "policy": lambda: app.cancel_order(SUPPORT, oid, CancelReason.POLICY_VIOLATION, "spam"),
        "accept": lambda: app.accept_order(freelancer, oid),
        "deliver": lambda: app.deliver_order(freelancer, oid, "Here it is"),
        "revise": lambda: app.request_revision(client, oid, "Bigger, please"),
        "complete": lambda: app.complete_order(client, oid),
        "ask_cancel": lambda: app.request_cancellation(party, oid, "no longer needed"),
        "agree": lambda: app.accept_cancellation(other, oid),
        "decline": lambda: app.decline_cancellation(other, oid),
        "take_back": lambda: app.withdraw_cancellation(asker, oid),
        "dispute": lambda: app.open_dispute(party, oid, "not what I asked for"),
        "release": lambda: resolve(DisputeOutcome.RELEASE),
        "refund_all": lambda: resolve(DisputeOutcome.REFUND),
        "split": lambda: resolve(DisputeOutcome.SPLIT, part_of(order.held, share)),
        "refund": lambda: app.record_gateway_refund(
            GATEWAY, pid, refund, "MAD", f"wh-{step}", f"gw-{step}"
        ),
        "confirm_refund": lambda: app.confirm_refund(SUPPORT, pid, f"by-hand-{step}"),
    }[name]


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite:///{directory}/ledger.db"


@contextmanager
def ledger(url: str, fee_percent: str, by_hand: bool) -> Iterator[tuple[LedgerApp, FakeClock]]:
    """A fresh app per example (hypothesis does not reset function-scoped fixtures)."""
    with tempfile.TemporaryDirectory() as var:
        config = load_settings(
            LEDGER_DATABASE_URL=url,
            LEDGER_VAR_DIR=var,
            LEDGER_PLATFORM_FEE_PERCENT=fee_percent,
            _env_file=None,
        )
        clock = FakeClock()
        app = build_ledger(config, clock)
        if by_hand:
            app.gateway = ManualRefunds("k" * 32, app.public_url)
        try:
            yield app, clock
        finally:
            app.close()


def exercise(data: st.DataObject, database: Callable[[], AbstractContextManager[str]]) -> None:
    """One example: a fee rate, a gateway, a batch size, then the steps on three orders of
    two freelancers, the books checked along the way, at the end, and once rebuilt."""
    fee_percent = data.draw(st.sampled_from(FEE_PERCENTS), label="fee percent")
    by_hand = data.draw(st.booleans(), label="refunds by hand")
    batch_size = data.draw(st.integers(1, 12), label="projection batch size")
    with database() as url, ledger(url, fee_percent, by_hand) as (app, clock):
        gigs = [app.create_gig(f, "Logo", PACKAGES).aggregate.id for f in FREELANCERS]
        orders = [
            app.place_order(CLIENTS[i // 2 % 2], gigs[i % 2], PACKAGES[i // 2 % 2].package_id)
            for i in range(N_ORDERS)
        ]
        order_ids = [done.aggregate.id for done in orders]
        with open_runner(app, batch_size=batch_size, poll_interval=3600) as runner:
            models = ReadModels(runner.db)
            clear = funds_clearance(app, models, CLEARANCE, clock)
            expire = payment_expiry(app, models, clock)
            for step in range(data.draw(st.integers(5, 80), label="steps")):
                index = data.draw(st.integers(0, N_ORDERS - 1), label="order")
                order: Order = app.repository.get(order_ids[index])
                stray = data.draw(st.sampled_from((False,) * 5 + (True,)), label="stray")
                choices = ANY if stray else [*NEXT[order.stage], "tick", "project"]
                name = data.draw(st.sampled_from(choices), label=f"step {step}")
                share = data.draw(st.integers(-1, 100), label="share")
                if name == "tick":  # the timers act on what the read models show due
                    clock.advance(hours=4 * max(share, 0))
                    runner.run_once()
                    expire()
                    clear()
                elif name == "project":
                    runner.run_once()
                    check_books(app, runner, order_ids)
                else:
                    clock.advance(minutes=31 if name == "expire" else 1)  # expiry: 30 min
                    with suppress(LedgerError):  # a refusal must leave the books alone
                        command(app, order, name, share, step)()
            runner.run_once()
            check_books(app, runner, order_ids)
            clock.advance(days=15)  # every release is due now: the timer clears them all
            runner.run_once()
            clear()
            runner.run_once()
            check_books(app, runner, order_ids, all_cleared=True)
            # 7. a rebuild from the log writes what the incremental runs wrote
            incremental, rebuilt = dump(runner), rebuild_all(runner)
            for table in EscrowLedger.tables:
                assert rebuilt[table] == incremental[table], table


def check_books(
    app: LedgerApp, runner: ProjectionRunner, order_ids: list[UUID], all_cleared: bool = False
) -> None:
    """The invariants of issue #6 (numbered as there), on books caught up with the log."""
    accounts, books = check_journal(runner)
    holds = {r["order_id"]: r for r in runner.db.read("SELECT * FROM escrow_holds")}
    owed, pending = Counter[str](), Counter[str]()
    for oid in order_ids:
        order: Order = app.repository.get(oid)
        kept = check_order(order, payment_of(app, oid), books[str(oid)], holds.get(str(oid)))
        owed[order.freelancer_id] += kept
        if order.released_at is not None and order.net and order.funds_cleared_at is None:
            pending[order.freelancer_id] += kept
            assert not all_cleared, f"{oid} was due to clear"
    # 5, 8. each freelancer is owed what the orders say, part of it pending clearance
    queries = EscrowQueries(runner.db)
    for user in (f.id for f in FREELANCERS):
        account = freelancer_account(user)
        total = balance_of(account, *accounts.get(account, [0, 0]))
        assert total == owed[user] >= 0, user
        balance = queries.balance(user)
        assert balance["pendingClearance"] + balance["available"] == from_centimes(total)
        assert balance["pendingClearance"] == from_centimes(pending[user]), user


def check_journal(runner: ProjectionRunner) -> tuple[dict[str, list[int]], dict[str, Counter[str]]]:
    """1, 2, 5: every entry balances, so do the accounts, which are their postings' sums,
    and escrow, gateway and fees never go below zero. Returns the accounts' debits and
    credits, and each order's book: "<account> dr|cr", "refunds", "escrow refunded"."""
    postings = runner.db.read(
        "SELECT p.*, e.order_id FROM escrow_postings p JOIN escrow_entries e ON e.id = p.entry_id"
    )
    refunds = {p["entry_id"] for p in postings if p["account"] == GATEWAY_ACCOUNT and p["credit"]}
    unbalanced, summed = Counter[str](), defaultdict[str, list[int]](lambda: [0, 0])
    books = defaultdict[str, Counter[str]](Counter)
    for p in postings:
        debit, credit, book = int(p["debit"]), int(p["credit"]), books[p["order_id"]]
        assert min(debit, credit) == 0 < max(debit, credit), p  # one side, a positive amount
        unbalanced[p["entry_id"]] += debit - credit
        summed[p["account"]][0] += debit
        summed[p["account"]][1] += credit
        book[f"{p['account']} dr"] += debit
        book[f"{p['account']} cr"] += credit
        if p["entry_id"] in refunds:
            book["refunds"] += p["account"] == GATEWAY_ACCOUNT
            book["escrow refunded"] += debit if p["account"] == ESCROW else 0
    assert {entry: diff for entry, diff in unbalanced.items() if diff} == {}
    queries = EscrowQueries(runner.db)
    assert queries.unbalanced_entries() == []
    rows = runner.db.read("SELECT * FROM escrow_accounts")
    accounts = {r["account"]: [int(r["debits"]), int(r["credits"])] for r in rows}
    assert accounts == dict(summed)
    debits, credits = queries.totals()
    assert debits == credits == sum(d for d, _ in accounts.values())
    for account in (ESCROW, GATEWAY_ACCOUNT, FEES):
        assert balance_of(account, *accounts.get(account, [0, 0])) >= 0, account
    return accounts, books


def check_order(order: Order, payment: Payment | None, book: Counter[str], hold: Row | None) -> int:
    """3, 4, 6 on one order's book and hold; returns what its freelancer keeps of it."""
    payee = freelancer_account(order.freelancer_id)
    mine = {f"{a} {side}" for a in (ESCROW, GATEWAY_ACCOUNT, FEES, payee) for side in ("dr", "cr")}
    assert set(book) <= mine | {"refunds", "escrow refunded"}, "another order's accounts"
    waiting = sum(int(r["amount"]) for r in payment.requested_refunds) if payment else 0
    captured = payment.amount if payment and payment.status == "success" else 0
    refunded = payment.refunded if payment else 0
    # 3. while the order runs escrow holds what was paid less gateway refunds; after, only
    # the refunds asked for and not yet made at the gateway
    escrow = book[f"{ESCROW} cr"] - book[f"{ESCROW} dr"]
    running = order.held if order.status == OrderStatus.PROCESSING else 0
    assert escrow == running + waiting >= 0, order.status
    # 4. once the order is over, what left escrow is what was captured
    net, fee = book[f"{payee} cr"], book[f"{FEES} cr"]
    if order.status in ("completed", "cancelled") and not waiting:
        assert net + fee + book["escrow refunded"] == captured
    # 6. the books agree with the aggregates
    assert (book[f"{GATEWAY_ACCOUNT} dr"], book[f"{GATEWAY_ACCOUNT} cr"]) == (captured, refunded)
    assert (net, fee) == (order.net, order.fee)
    # ... refunds after the payout come back from the freelancer and the fee, each at most
    # what it was given, the fee's part in proportion (a centime's rounding per refund)
    after_payout = 0
    if order.status == OrderStatus.COMPLETED:
        after_payout = refunded + waiting - order.refunded - order.refunded_at_gateway
    from_net, from_fee = book[f"{payee} dr"], book[f"{FEES} dr"]
    assert from_net + from_fee == after_payout and from_net <= net and from_fee <= fee
    assert abs(from_fee * (net + fee) - after_payout * fee) <= book["refunds"] * (net + fee)
    assert (hold is None) == (payment is None)
    if hold is not None:  # what the next batch starts from
        assert hold["escrow"] == escrow
        assert sum(amount for amount, _ in json.loads(hold["requested"])) == waiting
        assert (hold["net_left"], hold["fee_left"]) == (net - from_net, fee - from_fee)
        assert (hold["cleared_at"] is None) == (order.funds_cleared_at is None)
    return net - from_net


BASE = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(BASE, max_examples=120)
@given(data=st.data())
def test_escrow_books_hold_on_sqlite(data: st.DataObject) -> None:
    exercise(data, sqlite_database)


@pytest.mark.postgres
@settings(BASE, max_examples=6)
@given(data=st.data())
def test_escrow_books_hold_on_postgres(data: st.DataObject) -> None:
    exercise(data, postgres_database)
