"""Shared set-up for the read-side tests: orders driven through varied lives, runners opened
and stopped, and every read-model table dumped so two builds can be compared row for row.

Everything goes through the public ``LedgerApp`` commands and ``ProjectionRunner`` API; the
only raw SQL reads the tables the projections own (and ``projection_tracking``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, DisputeOutcome, Package
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.registry import build_runner
from projections.runner import ProjectionRunner

SUPPORT = Caller("support-1", frozenset({"support"}))
GATEWAY = Caller.system("gateway")
PACKAGES = (
    Package("basic", 10_000, 3, 1, "A logo"),
    Package("standard", 25_000, 5, 2, "A logo and a palette"),
)

LIFECYCLES = (
    "placed",
    "withdrawn",
    "payment_pending",
    "payment_failed",
    "paid",
    "accepted",
    "delivered",
    "revision",
    "completed",
    "reviewed",
    "mutual_cancel",
    "declined_cancel",
    "dispute_refund",
    "dispute_split",
    "dispute_release",
    "policy_cancel",
)


@dataclass(frozen=True)
class Placed:
    """An order a helper placed: who is on it, its first event's position, where it went."""

    order_id: UUID
    client_id: str
    freelancer_id: str
    position: int
    lifecycle: str
    last_position: int


def open_gig(app: LedgerApp, freelancer: Caller, title: str = "Logo design") -> UUID:
    return app.create_gig(freelancer, title, PACKAGES).aggregate.id


def drive_order(
    app: LedgerApp, gig_id: UUID, client: Caller, lifecycle: str, rng: random.Random
) -> Placed:
    """Place one order and take it through ``lifecycle`` (one of ``LIFECYCLES``)."""
    package = rng.choice(PACKAGES)
    placed = app.place_order(client, gig_id, package.package_id, requirements="Blue, please")
    order = placed.aggregate
    oid, freelancer, price = order.id, Caller(order.freelancer_id), package.price
    steps: list[Callable[[], Any]] = []
    add = steps.append
    if lifecycle == "withdrawn":
        add(lambda: app.cancel_order(client, oid, CancelReason.CLIENT_WITHDREW, "changed mind"))
    if lifecycle not in ("placed", "withdrawn"):
        add(lambda: app.create_payment(client, oid, rng.choice(("credit_card", "cashplus"))))
    if lifecycle == "payment_failed":
        add(lambda: app.fail_payment(GATEWAY, payment_id_for(oid), "card declined", f"tx-{oid}"))
    if lifecycle not in ("placed", "withdrawn", "payment_pending", "payment_failed"):
        add(lambda: app.confirm_payment(GATEWAY, payment_id_for(oid), f"tx-{oid}", price, "MAD"))
    if lifecycle == "policy_cancel":
        add(lambda: app.cancel_order(SUPPORT, oid, CancelReason.POLICY_VIOLATION, "spam"))
    working = ("accepted", "delivered", "revision", "completed", "reviewed", "declined_cancel")
    if lifecycle in working or lifecycle.startswith("dispute"):
        add(lambda: app.accept_order(freelancer, oid))
    if lifecycle in ("delivered", "revision", "completed", "reviewed"):
        add(lambda: app.deliver_order(freelancer, oid, "Here it is"))
    if lifecycle in ("revision", "reviewed"):
        add(lambda: app.request_revision(client, oid, "Bigger, please"))
        add(lambda: app.deliver_order(freelancer, oid, "Bigger now"))
    if lifecycle in ("completed", "reviewed"):
        add(lambda: app.complete_order(client, oid))
    if lifecycle == "reviewed":
        add(lambda: app.review_order(client, oid, rng.randint(1, 5), "Thanks"))
    if lifecycle == "mutual_cancel":
        add(lambda: app.request_cancellation(client, oid, "no longer needed"))
        add(lambda: app.accept_cancellation(freelancer, oid))
    if lifecycle == "declined_cancel":
        add(lambda: app.request_cancellation(freelancer, oid, "too busy"))
        add(lambda: app.decline_cancellation(client, oid))
    if lifecycle.startswith("dispute"):
        outcome = DisputeOutcome(lifecycle.removeprefix("dispute_"))
        refund = package.price // 4 if outcome == DisputeOutcome.SPLIT else None
        add(lambda: app.open_dispute(client, oid, "not what I asked for"))
        add(lambda: app.resolve_dispute(SUPPORT, oid, outcome, refund))
    last = placed.position
    for step in steps:
        last = step().position
    return Placed(oid, client.id, order.freelancer_id, placed.position, lifecycle, last)


def drive_orders(
    app: LedgerApp,
    rng: random.Random,
    count: int,
    gigs: list[UUID],
    clients: list[Caller],
) -> list[Placed]:
    """``count`` orders on random gigs by random clients, each through a random lifecycle
    (every lifecycle at least once when ``count`` allows). A client never orders a gig of
    their own: callers must pass gigs and clients that allow that."""
    lifecycles = list(LIFECYCLES) + [rng.choice(LIFECYCLES) for _ in range(count)]
    lifecycles = lifecycles[:count]
    rng.shuffle(lifecycles)
    placed = []
    for lifecycle in lifecycles:
        gig_id = rng.choice(gigs)
        owner = app.get_gig(gig_id).freelancer_id
        client = rng.choice([c for c in clients if c.id != owner])
        placed.append(drive_order(app, gig_id, client, lifecycle, rng))
    return placed


def drive_in_threads(
    app: LedgerApp, gigs: list[UUID], clients: list[Caller], threads: int, per_thread: int
) -> list[Placed]:
    """Run ``drive_orders`` from ``threads`` threads at once (each with its own seed);
    any exception in a thread is raised here."""
    results: list[list[Placed]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads, timeout=30)

    def work(index: int) -> None:
        try:
            start.wait()
            results[index] = drive_orders(
                app, random.Random(1_000 + index), per_thread, gigs, clients
            )
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a command thread hung"
    if errors:
        raise errors[0]
    return [p for chunk in results for p in chunk]


def head(app: LedgerApp) -> int:
    return app.recorder.max_notification_id() or 0


@contextmanager
def open_runner(app: LedgerApp, **options: float) -> Iterator[ProjectionRunner]:
    """A runner on ``app``'s store (tables created), stopped however the test ends."""
    runner = build_runner(app, **options)
    try:
        yield runner
    finally:
        runner.stop()


def read_model_tables(runner: ProjectionRunner) -> list[str]:
    return sorted(t for p in runner.projections.values() for t in p.tables)


def dump(runner: ProjectionRunner) -> dict[str, list[dict[str, Any]]]:
    """Every row of every read-model table, every column, in a stable order."""
    return {
        table: sorted(
            runner.db.read(f"SELECT * FROM {table}"),
            key=lambda row: json.dumps(row, sort_keys=True, default=str),
        )
        for table in read_model_tables(runner)
    }


def tracked(runner: ProjectionRunner) -> dict[str, int]:
    """Positions as stored in ``projection_tracking`` (not the runner's memory of them)."""
    rows = runner.db.read("SELECT name, position FROM projection_tracking")
    return {row["name"]: int(row["position"]) for row in rows}


def rebuild_all(runner: ProjectionRunner) -> dict[str, list[dict[str, Any]]]:
    """Rebuild every projection from position 0 and dump the result."""
    runner.rebuild(sorted(runner.projections))
    return dump(runner)


def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``check`` until true, for conditions that nothing signals (a server-side state
    such as another session's LISTEN). Fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.01)


def projection_listeners(settings: Settings) -> int:
    """How many sessions LISTEN on the runners' channel (each started runner has one)."""
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query = 'LISTEN \"ledger_projections\"'"
        ).fetchone()
    return int(row[0]) if row else 0
