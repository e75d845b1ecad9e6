"""PostgreSQL only: several runners on one database. One leads each projection (advisory
locks), the others apply nothing; when the leader stops or its lock session dies another
takes over, and no event is ever applied twice. Followers learn positions by NOTIFY."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from tests.conftest import FakeClock
from tests.integration.projection_helpers import (
    drive_orders,
    dump,
    eventually,
    head,
    open_gig,
    projection_listeners,
    rebuild_all,
    tracked,
)

from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.service import LedgerApp
from ledger.settings import Settings, load_settings
from projections.base import topics_of
from projections.postgres import lock_key
from projections.registry import build_runner
from projections.runner import ProjectionRunner

pytestmark = pytest.mark.postgres

NAMES = {"orders", "payments", "gigs", "escrow", "notifications", "audit", "webhooks", "messages"}
LOCK_CLASS = 0x4C47
FREELANCERS = [Caller("ana"), Caller("ben")]
CLIENTS = [Caller("cara"), Caller("dan"), Caller("ben")]


@dataclass
class Node:
    """One process's worth of the service: an app and its runner."""

    app: LedgerApp
    runner: ProjectionRunner


@pytest.fixture
def pg_settings(postgres_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        LEDGER_DATABASE_URL=postgres_url, LEDGER_VAR_DIR=str(tmp_path), _env_file=None
    )


@pytest.fixture
def nodes(pg_settings: Settings, clock: FakeClock) -> Iterator[list[Node]]:
    """Two apps on one database, each with a runner that polls only hourly."""
    made: list[Node] = []
    try:
        for _ in range(2):
            app = build_ledger(pg_settings, clock)
            made.append(Node(app, build_runner(app, batch_size=5, poll_interval=3600)))
        yield made
    finally:
        for node in made:
            node.runner.stop()
            node.app.close()


@pytest.fixture
def gigs(nodes: list[Node]) -> list:
    return [open_gig(nodes[0].app, freelancer) for freelancer in FREELANCERS]


def drive(app: LedgerApp, gigs: list, seed: int, count: int = 8) -> None:
    drive_orders(app, random.Random(seed), count, gigs, CLIENTS)


def count_topics(app: LedgerApp, topics: list[str]) -> int:
    return len(app.recorder.select_notifications(start=1, limit=100_000, topics=topics))


def assert_applied_exactly_once(node: Node) -> None:
    """Every order and payment event is in the read models once: history rows are unique
    per (order, version), match the log's order events, and each row's version counts them."""
    db, app = node.runner.db, node.app
    duplicates = db.read(
        "SELECT order_id, version FROM order_history GROUP BY order_id, version HAVING count(*) > 1"
    )
    assert duplicates == []
    history = db.read("SELECT count(*) AS n FROM order_history")[0]["n"]
    assert history == count_topics(app, topics_of(Order))
    versions = db.read("SELECT coalesce(sum(version), 0) AS n FROM orders")[0]["n"]
    assert versions == history
    payments = db.read("SELECT coalesce(sum(version), 0) AS n FROM payments")[0]["n"]
    assert payments == count_topics(app, topics_of(Payment))
    reviews = count_topics(app, [t for t in topics_of(Order) if t.endswith("OrderReviewed")])
    assert db.read("SELECT coalesce(sum(rating_count), 0) AS n FROM gigs")[0]["n"] == reviews
    assert dump(node.runner) == rebuild_all(node.runner)


def lock_holders(settings: Settings) -> set[int]:
    """Backends holding one of the runners' advisory locks on this database."""
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            " AND l.classid = %s::oid AND l.objid = ANY(%s::oid[])",
            (LOCK_CLASS, [lock_key(name) % 2**32 for name in NAMES]),
        ).fetchall()
    return {row[0] for row in rows}


def terminate(settings: Settings, pids: set[int]) -> None:
    with psycopg.connect(settings.database_url) as conn:
        for pid in pids:
            assert conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()


def test_one_runner_leads_and_another_takes_over_when_it_stops(
    nodes: list[Node], gigs: list, pg_settings: Settings
) -> None:
    leader, follower = nodes
    drive(leader.app, gigs, seed=11)
    assert leader.runner.leading() == NAMES
    assert follower.runner.leading() == set()
    assert follower.runner.run_once() == 0
    assert tracked(follower.runner) == dict.fromkeys(NAMES, 0)
    assert all(not s.leading for s in follower.runner.status())
    assert leader.runner.run_once() > 0
    assert len(lock_holders(pg_settings)) == 1

    drive(follower.app, gigs, seed=12)  # commands may go through any app
    assert follower.runner.run_once() == 0
    leader.runner.stop()  # closes its lock session
    assert lock_holders(pg_settings) == set()
    assert follower.runner.leading() == NAMES
    assert follower.runner.run_once() > 0
    assert tracked(follower.runner) == dict.fromkeys(NAMES, head(follower.app))
    assert_applied_exactly_once(follower)


def test_killed_lock_session_hands_leadership_over(
    nodes: list[Node], gigs: list, pg_settings: Settings
) -> None:
    leader, follower = nodes
    drive(leader.app, gigs, seed=21)
    assert leader.runner.leading() == NAMES
    leader.runner.run_once()
    drive(leader.app, gigs, seed=22)
    holders = lock_holders(pg_settings)
    assert len(holders) == 1
    terminate(pg_settings, holders)  # the process "dies" as far as the database can tell

    assert follower.runner.leading() == NAMES
    assert follower.runner.run_once() > 0
    end = head(leader.app)
    assert tracked(follower.runner) == dict.fromkeys(NAMES, end)
    drive(leader.app, gigs, seed=23, count=4)
    leader.runner.run_once()  # whatever it believes, it must not apply anything twice
    follower.runner.run_once()
    assert tracked(follower.runner) == dict.fromkeys(NAMES, head(leader.app))
    assert_applied_exactly_once(follower)


def test_runner_whose_lock_session_died_no_longer_claims_to_lead(
    nodes: list[Node], gigs: list, pg_settings: Settings
) -> None:
    leader, follower = nodes
    assert leader.runner.leading() == NAMES
    terminate(pg_settings, lock_holders(pg_settings))
    assert follower.runner.leading() == NAMES
    assert leader.runner.leading().isdisjoint(follower.runner.leading())
    assert all(not s.leading for s in leader.runner.status())


def test_follower_learns_positions_by_notify_and_takes_over(
    nodes: list[Node], gigs: list, pg_settings: Settings
) -> None:
    leader, follower = nodes
    assert leader.runner.leading() == NAMES
    follower.runner.start()  # polls hourly and leads nothing: only NOTIFY can move it
    eventually(lambda: projection_listeners(pg_settings) == 1, what="the follower's LISTEN")
    drive(leader.app, gigs, seed=31, count=4)
    end = head(leader.app)
    assert not follower.runner.wait_for(end, timeout=0.05)
    leader.runner.run_once()
    assert follower.runner.wait_for(end, timeout=5)

    leader.runner.stop()  # the follower notices at its next wake-up: the next event
    done = leader.app.place_order(CLIENTS[0], gigs[0], "basic")
    assert follower.runner.wait_for(done.position, timeout=5)
    assert follower.runner.leading() == NAMES
    assert_applied_exactly_once(follower)
