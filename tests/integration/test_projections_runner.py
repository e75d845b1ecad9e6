"""The projection runner on both stores: read models match the commands, batches apply
exactly once, a crashed runner resumes, a rebuild equals the incremental build, gaps and
unread topics still advance positions, and ``wait_for``/``status``/wake-ups behave."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.api_shapes import GIG_KEYS, ORDER_KEYS, PAYMENT_KEYS
from tests.conftest import FakeClock
from tests.integration.projection_helpers import (
    GATEWAY,
    SUPPORT,
    drive_in_threads,
    drive_orders,
    dump,
    eventually,
    head,
    open_gig,
    open_runner,
    projection_listeners,
    rebuild_all,
    tracked,
)

from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.clock import iso
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, Package
from ledger.service import LedgerApp
from ledger.settings import Settings, load_settings
from projections.base import Envelope
from projections.db import Txn
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

NAMES = {"orders", "payments", "gigs", "escrow", "notifications", "audit", "webhooks", "messages"}
FREELANCERS = [Caller("ana"), Caller("ben")]
CLIENTS = [Caller("cara"), Caller("dan"), Caller("ben")]


class Boom(Exception):
    """The fault a test injects into a projection."""


@pytest.fixture
def runner(stored_app: LedgerApp) -> Iterator[ProjectionRunner]:
    with open_runner(stored_app, poll_interval=3600) as runner:
        yield runner


def populate(app: LedgerApp, count: int, seed: int = 1) -> list[Any]:
    """``count`` orders through varied lives, and a conversation on the first ones (so every
    projection, ``messages`` too, has rows to write)."""
    gigs = [open_gig(app, freelancer) for freelancer in FREELANCERS]
    placed = drive_orders(app, random.Random(seed), count, gigs, CLIENTS)
    talk = app.place_order(CLIENTS[0], gigs[0], "basic").aggregate
    for n in range(4):
        app.post_message(CLIENTS[0] if n % 2 == 0 else Caller(talk.freelancer_id), talk.id,
                         f"message {n}")  # fmt: skip
    return placed


def test_read_models_reflect_commands(
    stored_app: LedgerApp, runner: ProjectionRunner, clock: FakeClock
) -> None:
    app, freelancer, client = stored_app, Caller("freelancer-1"), Caller("client-1")
    gig = app.create_gig(freelancer, "Logo", [Package("basic", 10_000, 3, 1, "desc")]).aggregate
    steps: list[tuple[str, str, str, Caller, Any]] = []

    def step(status: str, stage: str, event: str, actor: Caller, command: Any) -> Any:
        moment = clock.advance(minutes=5)
        steps.append((status, stage, event, actor, moment))
        return command()

    order = step("pending", "awaiting_payment", "OrderPlaced", client,
                 lambda: app.place_order(client, gig.id, "basic", "Blue")).aggregate  # fmt: skip
    oid, pid = order.id, payment_id_for(order.id)
    app.create_payment(client, oid, "credit_card")
    step("processing", "awaiting_acceptance", "OrderPaymentConfirmed", GATEWAY,
         lambda: app.confirm_payment(GATEWAY, pid, "tx-1", 10_000, "MAD"))  # fmt: skip
    paid_at = clock.now
    step("processing", "in_progress", "OrderAccepted", freelancer,
         lambda: app.accept_order(freelancer, oid))  # fmt: skip
    step("processing", "delivered", "OrderDelivered", freelancer,
         lambda: app.deliver_order(freelancer, oid, "v1"))  # fmt: skip
    step("processing", "revision_requested", "RevisionRequested", client,
         lambda: app.request_revision(client, oid, "bigger"))  # fmt: skip
    step("processing", "delivered", "OrderDelivered", freelancer,
         lambda: app.deliver_order(freelancer, oid, "v2"))  # fmt: skip
    step("completed", "closed", "OrderCompleted", client, lambda: app.complete_order(client, oid))
    step("completed", "closed", "OrderReviewed", client,
         lambda: app.review_order(client, oid, 4, "good"))  # fmt: skip
    other = app.place_order(Caller("client-2"), gig.id, "basic").aggregate.id
    refunded = app.place_order(client, gig.id, "basic").aggregate.id
    app.create_payment(client, refunded, "cashplus")
    app.confirm_payment(GATEWAY, payment_id_for(refunded), "tx-2", 10_000, "MAD")
    refund_at = clock.advance(hours=1)
    app.cancel_order(SUPPORT, refunded, CancelReason.POLICY_VIOLATION, "spam")
    second = app.place_order(Caller("client-3"), gig.id, "basic").aggregate.id
    app.create_payment(Caller("client-3"), second, "credit_card")
    app.confirm_payment(GATEWAY, payment_id_for(second), "tx-3", 10_000, "MAD")
    app.deliver_order(freelancer, second, "done")
    app.complete_order(Caller("client-3"), second)
    app.review_order(Caller("client-3"), second, 5)
    runner.run_once()
    models = ReadModels(runner.db)

    view = models.orders.get(str(oid))
    assert view is not None and set(view) == ORDER_KEYS
    assert (view["status"], view["stage"], view["version"]) == ("completed", "closed", 8)
    assert view["totalAmount"] == Decimal("100.00") and view["currency"] == "MAD"
    assert view["package"] == {
        "packageId": "basic",
        "price": Decimal("100.00"),
        "deliveryDays": 3,
        "revisions": 1,
        "description": "desc",
    }
    parties = (view["userId"], view["freelancerId"], view["gigId"])
    assert parties == ("client-1", "freelancer-1", str(gig.id))
    assert (view["revisionsUsed"], view["requirements"]) == (1, "Blue")
    assert view["dueAt"] == iso(paid_at + timedelta(days=3))
    assert (view["createdAt"], view["updatedAt"]) == (iso(steps[0][4]), iso(steps[-1][4]))
    history = models.orders.history(str(oid))
    assert history == [
        {"status": status, "stage": stage, "event": event, "at": iso(at),
         "actor": {"id": actor.id, "role": role}}
        for (status, stage, event, actor, at), role in zip(steps, [
            "client", "gateway", "freelancer", "freelancer", "client", "freelancer", "client",
            "client"], strict=True)
    ]  # fmt: skip
    assert models.orders.get("no-such-order") is None

    payment = models.payments.get(str(pid))
    assert payment is not None and set(payment) == PAYMENT_KEYS
    assert payment == models.payments.of_order(str(oid))
    assert (payment["status"], payment["transactionId"], payment["amount"]) == (
        "success", "tx-1", Decimal("100.00"))  # fmt: skip
    # Version 3: created, checkout opened, succeeded.
    assert (payment["refundedAmount"], payment["refunds"], payment["version"]) == (
        Decimal("0.00"), [], 3)  # fmt: skip
    assert models.payments.of_order(str(other)) is None
    cancelled = models.payments.of_order(str(refunded))
    assert cancelled is not None and cancelled["version"] == 4
    assert cancelled["refundedAmount"] == Decimal("100.00")
    refund = {"amount": Decimal("100.00"), "currency": "MAD", "reason": "policy_violation"}
    assert cancelled["refunds"] == [
        {**refund, "at": iso(refund_at), "status": "completed", "reference": None}
    ]

    catalogue = models.gigs.get(str(gig.id))
    assert catalogue is not None and set(catalogue) == GIG_KEYS
    assert catalogue["packages"] == [view["package"]]
    assert catalogue["rating"] == {"average": 4.5, "count": 2}
    assert catalogue["freelancerId"] == "freelancer-1" and catalogue["title"] == "Logo"


def fail_on(
    runner: ProjectionRunner, name: str, nth_event: int = 0, nth_batch: int = 1
) -> list[int]:
    """Make projection ``name`` raise ``Boom`` on its ``nth_batch``-th batch, after writing the
    rows of that batch's first ``nth_event - 1`` events (half the batch when 0). Returns a list
    that records, per failing batch, how many rows its tables held when it raised."""
    projection = runner.projections[name]
    original, calls, seen = projection.apply, [0], []

    def apply(batch: Sequence[Envelope], txn: Txn) -> None:
        calls[0] += 1
        if calls[0] < nth_batch:
            return original(batch, txn)
        original(batch[: (nth_event or len(batch) // 2 + 1) - 1], txn)
        seen.append(sum(txn.one(f"SELECT count(*) AS n FROM {t}")["n"] for t in projection.tables))
        raise Boom(name)

    projection.apply = apply  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("name", sorted(NAMES))
def test_failed_batch_leaves_nothing_and_retry_equals_clean_build(
    stored_app: LedgerApp, runner: ProjectionRunner, name: str
) -> None:
    populate(stored_app, 6, seed=2)
    runner.run_once()
    before, positions = dump(runner), tracked(runner)
    populate(stored_app, 12, seed=3)
    projection = runner.projections[name]
    written = fail_on(runner, name)
    with pytest.raises(Boom):
        runner.run_once([name])
    before_rows = sum(len(before[t]) for t in projection.tables)
    assert written and written[0] > before_rows, "the fault must strike after writing rows"
    after = dump(runner)
    assert {t: after[t] for t in projection.tables} == {t: before[t] for t in projection.tables}
    assert tracked(runner)[name] == positions[name]
    assert {s.name: s.position for s in runner.status()}[name] == positions[name]

    del projection.apply  # the fault is gone: the class's own apply again
    runner.run_once()
    assert set(tracked(runner).values()) == {head(stored_app)}
    assert dump(runner) == rebuild_all(runner)


def test_resume_after_crash_equals_full_rebuild(
    settings: Settings, clock: FakeClock, stored_app: LedgerApp
) -> None:
    populate(stored_app, 20, seed=4)
    end = head(stored_app)
    crashed = build_ledger(settings, clock)
    try:
        with open_runner(crashed, batch_size=2) as first:
            for name in sorted(NAMES):
                fail_on(first, name, nth_event=2, nth_batch=2)
                with pytest.raises(Boom):
                    first.run_once([name])
            assert all(0 < position < end for position in tracked(first).values())
    finally:
        crashed.close()
    with open_runner(stored_app, batch_size=3) as second:
        assert second.run_once() > 0
        assert tracked(second) == dict.fromkeys(NAMES, end)
        assert dump(second) == rebuild_all(second)


def test_rebuild_equals_incremental_build_under_concurrent_commands(
    stored_app: LedgerApp,
) -> None:
    gigs = [open_gig(stored_app, freelancer) for freelancer in FREELANCERS]
    with open_runner(stored_app, batch_size=7, poll_interval=0.5) as runner:
        runner.start()
        placed = drive_in_threads(stored_app, gigs, CLIENTS, threads=3, per_thread=8)
        stored_app.revise_gig(
            FREELANCERS[0], gigs[0], packages=[Package("premium", 90_000, 9, 3, "All")]
        )
        end = head(stored_app)
        assert runner.wait_for(end, timeout=30)
        runner.stop()
        incremental = dump(runner)
        assert len(incremental["orders"]) == len(placed) == 24
        assert tracked(runner) == dict.fromkeys(NAMES, end)
        assert rebuild_all(runner) == incremental
        assert tracked(runner) == dict.fromkeys(NAMES, end)


def leave_gap(settings: Settings, table: str) -> None:
    """Consume notification ids without committing an event: on PostgreSQL a ``nextval`` and
    a rolled-back insert each skip an id; SQLite reuses a rolled-back rowid (no gap)."""
    if settings.is_postgres:
        with psycopg.connect(settings.database_url) as conn:
            conn.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'notification_id'))")
            conn.commit()
            conn.execute(
                f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                " VALUES (gen_random_uuid(), 1, 'x', 'y')"
            )
            conn.rollback()
        return
    with closing(sqlite3.connect(str(settings.sqlite_path))) as conn:
        conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
            " VALUES ('00000000-0000-0000-0000-000000000001', 1, 'x', x'00')"
        )
        conn.rollback()


def test_gaps_in_notification_ids_lose_nothing(
    settings: Settings, stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    populate(stored_app, 3, seed=5)
    runner.run_once()
    leave_gap(settings, stored_app.recorder.events_table_name)
    placed = populate(stored_app, 6, seed=6)
    end = head(stored_app)
    stored = stored_app.recorder.select_notifications(start=1, limit=10_000)
    assert len(stored) == (end - 2 if settings.is_postgres else end)  # PG: two ids skipped
    assert runner.run_once() > 0
    assert tracked(runner) == dict.fromkeys(NAMES, end)
    models = ReadModels(runner.db)
    assert all(models.orders.get(str(p.order_id)) is not None for p in placed)
    assert dump(runner) == rebuild_all(runner)


def test_unread_topics_still_advance_every_position(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    assert runner.run_once() == 0
    assert tracked(runner) == dict.fromkeys(NAMES, 0)
    open_gig(stored_app, FREELANCERS[0])
    unread = ["escrow", "notifications", "orders", "payments"]
    assert runner.run_once(unread) == 0, "none of them reads a gig's event"
    assert {name: tracked(runner)[name] for name in unread} == dict.fromkeys(unread, 1)
    assert runner.run_once() == 2, "the catalogue and the audit chain read it"
    assert tracked(runner) == dict.fromkeys(NAMES, head(stored_app))
    assert runner.wait_for(head(stored_app), timeout=0, names=["payments"])


def test_wait_for(stored_app: LedgerApp, runner: ProjectionRunner) -> None:
    gig = open_gig(stored_app, FREELANCERS[0])
    runner.run_once()
    started = time.monotonic()
    assert runner.wait_for(head(stored_app), timeout=0)
    assert runner.wait_for(head(stored_app), timeout=5)
    assert time.monotonic() - started < 1
    started = time.monotonic()
    assert not runner.wait_for(head(stored_app) + 1_000, timeout=0.05)
    assert 0.05 <= time.monotonic() - started < 2
    runner.start()
    done = stored_app.place_order(CLIENTS[0], gig, "basic")
    assert runner.wait_for(done.position, timeout=5)
    assert ReadModels(runner.db).orders.get(str(done.aggregate.id)) is not None


def test_status_reports_positions_head_and_lag(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    populate(stored_app, 2, seed=7)
    end = head(stored_app)
    before = runner.status()
    assert {s.name for s in before} == NAMES
    assert all((s.position, s.head, s.lag, s.leading, s.error) == (0, end, end, True, None)
               for s in before)  # fmt: skip
    runner.run_once()
    after = runner.status()
    assert all((s.position, s.head, s.lag, s.error) == (end, end, 0, None) for s in after)


def test_in_process_signal_wakes_a_sleeping_runner(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    runner.start()  # polls hourly: only the signal after each save can wake it in time
    for title in ("Logo", "Banner", "Icon"):
        done = stored_app.create_gig(FREELANCERS[1], title, [Package("basic", 500, 1, 0, "x")])
        assert runner.wait_for(done.position, timeout=5)
        assert ReadModels(runner.db).gigs.get(str(done.aggregate.id)) is not None


@pytest.mark.postgres
def test_notify_from_another_app_wakes_a_sleeping_runner(
    postgres_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    settings = load_settings(
        LEDGER_DATABASE_URL=postgres_url, LEDGER_VAR_DIR=str(tmp_path), _env_file=None
    )
    app, other = build_ledger(settings, clock), build_ledger(settings, clock)
    try:
        with open_runner(app, poll_interval=3600) as runner:
            runner.start()
            eventually(lambda: projection_listeners(settings) > 0, what="the runner's LISTEN")
            for title in ("Logo", "Banner"):
                done = other.create_gig(FREELANCERS[0], title, [Package("basic", 5, 1, 0, "x")])
                assert runner.wait_for(done.position, timeout=5)
                assert ReadModels(runner.db).gigs.get(str(done.aggregate.id)) is not None
    finally:
        other.close()
        app.close()
