"""The notifications read model and the inbox commands, on SQLite and PostgreSQL: who is
told what, preferences honoured as they were at each moment (also by a rebuild), read
marks, and a rebuild equal to the incremental build.
"""

from __future__ import annotations

import random
from collections import Counter
from uuid import UUID, uuid4

import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.projection_helpers import (
    GATEWAY,
    drive_order,
    dump,
    open_gig,
    open_runner,
)

from ledger.actors import Caller
from ledger.domain.inbox import inbox_id_for
from ledger.domain.payment import payment_id_for
from ledger.errors import Forbidden, NotFound, ValidationFailed
from ledger.service import LedgerApp
from ledger.settings import load_settings
from projections.notifications.projection import UNREAD_MESSAGES
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

CLIENT, FREELANCER = Caller("client-1"), Caller("freelancer-1")
TABLES = ("notifications", "notification_orders", "notification_settings")


def told(runner: ProjectionRunner, who: Caller, **filters: bool) -> list[tuple[str, str]]:
    """``who``'s notifications (type, order id), newest first, once the runner is caught up."""
    runner.run_once()
    page = ReadModels(runner.db).notifications.list(who.id, limit=100, **filters)
    assert not page.has_more
    return [(n["type"], n["orderId"]) for n in page.data]


def notification_tables(runner: ProjectionRunner) -> dict[str, list[dict[str, object]]]:
    return {table: rows for table, rows in dump(runner).items() if table in TABLES}


def order(app: LedgerApp, lifecycle: str, seed: int = 1) -> UUID:
    gig = open_gig(app, FREELANCER)
    return drive_order(app, gig, CLIENT, lifecycle, random.Random(seed)).order_id


def test_each_type_goes_to_its_recipients(stored_app: LedgerApp) -> None:
    """Paid: the client's payment is confirmed and the freelancer receives the order, both
    see it processing; delivered (twice, with a revision): the client; completed: both,
    and the client is asked for a review. Placing, paying attempts, accepting, revision
    requests and reviews tell nobody."""
    oid = str(order(stored_app, "reviewed"))
    with open_runner(stored_app) as runner:
        assert told(runner, CLIENT) == [
            ("review.requested", oid),
            ("order.status_changed", oid),
            ("order.delivered", oid),
            ("order.delivered", oid),
            ("order.status_changed", oid),
            ("payment.confirmed", oid),
        ]
        assert told(runner, FREELANCER) == [
            ("order.status_changed", oid),
            ("order.received", oid),
            ("order.status_changed", oid),
        ]


@pytest.mark.parametrize(
    ("lifecycle", "client_types", "freelancer_types"),
    [
        ("withdrawn", ["order.status_changed"], ["order.status_changed"]),
        ("payment_failed", ["order.status_changed"], ["order.status_changed"]),
        ("mutual_cancel", ["order.status_changed"] * 2 + ["payment.confirmed"],
         ["order.status_changed", "order.received", "order.status_changed"]),
        ("dispute_refund", ["order.status_changed"] * 2 + ["payment.confirmed"],
         ["order.status_changed", "order.received", "order.status_changed"]),
        ("dispute_split",
         ["review.requested"] + ["order.status_changed"] * 2 + ["payment.confirmed"],
         ["order.status_changed", "order.received", "order.status_changed"]),
        ("dispute_release",
         ["review.requested"] + ["order.status_changed"] * 2 + ["payment.confirmed"],
         ["order.status_changed", "order.received", "order.status_changed"]),
        ("policy_cancel", ["order.status_changed"] * 2 + ["payment.confirmed"],
         ["order.status_changed", "order.received", "order.status_changed"]),
        ("payment_pending", [], []),
        ("declined_cancel", ["order.status_changed", "payment.confirmed"],
         ["order.received", "order.status_changed"]),
    ],
)  # fmt: skip
def test_cancellations_and_disputes_tell_both_parties(
    stored_app: LedgerApp,
    lifecycle: str,
    client_types: list[str],
    freelancer_types: list[str],
) -> None:
    order(stored_app, lifecycle)
    with open_runner(stored_app) as runner:
        assert [kind for kind, _ in told(runner, CLIENT)] == client_types
        assert [kind for kind, _ in told(runner, FREELANCER)] == freelancer_types


def test_a_payment_after_the_cancellation_confirms_nothing(stored_app: LedgerApp) -> None:
    """The payment failed (the order is cancelled), then the gateway reports it paid after
    all: it is refunded in the same write, and nobody is told it was confirmed."""
    oid = order(stored_app, "payment_failed")
    stored_app.confirm_payment(GATEWAY, payment_id_for(oid), "tx-late", 10_000, "MAD")
    with open_runner(stored_app) as runner:
        assert told(runner, CLIENT) == [("order.status_changed", str(oid))]
        assert told(runner, FREELANCER) == [("order.status_changed", str(oid))]


def test_a_late_order_tells_both_parties(stored_app: LedgerApp, clock: FakeClock) -> None:
    """``OrderMarkedLate`` (the deadlines' clock) → ``order.late`` to both, with the date."""
    oid = order(stored_app, "accepted")
    clock.advance(days=30)
    assert stored_app.mark_late(oid) is not None
    with open_runner(stored_app) as runner:
        assert told(runner, CLIENT)[0] == ("order.late", str(oid))
        assert told(runner, FREELANCER)[0] == ("order.late", str(oid))
        [late] = ReadModels(runner.db).notifications.list(CLIENT.id, limit=1).data
        assert "past its due date" in late["message"]


def test_nothing_is_made_while_off_and_again_once_on(stored_app: LedgerApp) -> None:
    """The client turns order updates off: a whole order tells them nothing (the freelancer
    everything); on again, the next order tells them again, and nothing made while off
    appears afterwards."""
    stored_app.set_preferences(CLIENT, False)
    quiet = str(order(stored_app, "completed", seed=1))
    with open_runner(stored_app) as runner:
        assert told(runner, CLIENT) == []
        assert len(told(runner, FREELANCER)) == 3
        stored_app.set_preferences(CLIENT, True)
        loud = str(order(stored_app, "completed", seed=2))
        assert {oid for _, oid in told(runner, CLIENT)} == {loud}
        assert len(told(runner, CLIENT)) == 5
        assert Counter(oid for _, oid in told(runner, FREELANCER)) == {quiet: 3, loud: 3}


def test_a_rebuild_honours_the_preference_as_it_was_between_two_events(
    stored_app: LedgerApp,
) -> None:
    """Off between payment and delivery, on again before completion: the delivery told the
    client nothing, and neither does a rebuild made after the preference was back on."""
    gig = open_gig(stored_app, FREELANCER)
    oid = stored_app.place_order(CLIENT, gig, "basic").aggregate.id
    stored_app.create_payment(CLIENT, oid, "credit_card")
    stored_app.confirm_payment(GATEWAY, payment_id_for(oid), "tx-1", 10_000, "MAD")
    stored_app.set_preferences(CLIENT, False)
    stored_app.deliver_order(FREELANCER, oid, "Here it is")
    stored_app.set_preferences(CLIENT, True)
    stored_app.complete_order(CLIENT, oid)
    expected = ["review.requested", "order.status_changed"]
    expected += ["order.status_changed", "payment.confirmed"]
    with open_runner(stored_app, batch_size=2) as runner:
        assert [kind for kind, _ in told(runner, CLIENT)] == expected
        incremental = notification_tables(runner)
        runner.rebuild(["notifications"])
        assert notification_tables(runner) == incremental
        assert [kind for kind, _ in told(runner, CLIENT)] == expected


def test_a_rebuild_makes_the_same_notifications(stored_app: LedgerApp) -> None:
    """Orders of every kind, preferences turned off and on, notifications read, applied
    in small batches as they happen: a rebuild in one pass gives the same rows (ids, read
    marks and all)."""
    rng = random.Random(8)
    users = [Caller(f"user-{i}") for i in range(4)]
    gigs = {user.id: open_gig(stored_app, user) for user in users}
    lifecycles = ["reviewed", "mutual_cancel", "dispute_split", "withdrawn", "payment_failed"]
    with open_runner(stored_app, batch_size=3) as runner:
        models = ReadModels(runner.db)
        for step in range(12):
            client, freelancer = rng.sample(users, 2)
            drive_order(stored_app, gigs[freelancer.id], client, rng.choice(lifecycles), rng)
            stored_app.set_preferences(rng.choice(users), step % 3 != 0)
            runner.run_once()
            reader = rng.choice(users)
            for item in models.notifications.list(reader.id, limit=3).data:
                stored_app.mark_notification_read(reader, UUID(item["id"]), reader.id)
        runner.run_once()
        incremental = notification_tables(runner)
        assert any(row["read_at"] for row in incremental["notifications"])
        assert len(incremental["notification_settings"]) == len(users)
        runner.rebuild(["notifications"])
        assert notification_tables(runner) == incremental


def test_marking_read_is_the_recipients_alone_and_idempotent(stored_app: LedgerApp) -> None:
    oid = order(stored_app, "paid")
    with open_runner(stored_app) as runner:
        models = ReadModels(runner.db).notifications
        told(runner, CLIENT)
        [newest, _] = models.list(CLIENT.id, limit=2).data
        nid = UUID(newest["id"])
        recipient = models.recipient_of(newest["id"])
        with pytest.raises(NotFound):  # the freelancer's inbox is no way to the client's
            stored_app.mark_notification_read(FREELANCER, nid, recipient)
        with pytest.raises(NotFound):
            stored_app.mark_notification_read(CLIENT, UUID(int=7), None)
        first = stored_app.mark_notification_read(CLIENT, nid, recipient)
        again = stored_app.mark_notification_read(CLIENT, nid, recipient)
        assert again.aggregate.version == first.aggregate.version
        assert again.position >= first.position
        assert told(runner, CLIENT, unread=False) == [(newest["type"], str(oid))]
        unread = models.list(CLIENT.id, unread=True, limit=5).data
        assert newest["id"] not in [n["id"] for n in unread]
        assert unread and all(n["readAt"] is None for n in unread)


def test_preferences_are_the_callers_own(stored_app: LedgerApp) -> None:
    assert stored_app.get_preferences(CLIENT).order_updates is True
    off = stored_app.set_preferences(CLIENT, False)
    assert stored_app.get_preferences(CLIENT).order_updates is False
    assert stored_app.get_preferences(FREELANCER).order_updates is True
    same = stored_app.set_preferences(CLIENT, False)  # nothing to store
    assert same.aggregate.version == off.aggregate.version
    with pytest.raises(ValidationFailed):
        stored_app.set_preferences(CLIENT, "no")  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        stored_app.set_preferences(Caller("auditor-1", frozenset({"auditor"})), False)


def test_a_long_lived_inbox_loads_from_its_snapshot(stored_app: LedgerApp) -> None:
    """Every read mark is an event of the inbox: snapshots keep loading it cheap."""
    for step in range(60):
        stored_app.set_preferences(CLIENT, step % 2 == 0)
    assert stored_app.get_preferences(CLIENT).order_updates is False
    assert stored_app.snapshots is not None
    assert list(stored_app.snapshots.get(inbox_id_for(CLIENT.id))), "no snapshot taken"


@pytest.mark.postgres
def test_a_messages_unread_notifications_are_found_by_an_index(
    postgres_url: str, clock: FakeClock
) -> None:
    """Every batch carrying a message looks up the order's unread message notifications
    (``UNREAD_MESSAGES``); without an index on the order that was a scan of every
    notification ever made, once a batch. Scans are refused here so that one is taken only
    when no index can serve the lookup; the session's own counts, read before and after the
    lookup, say which."""
    settings = load_settings(LEDGER_DATABASE_URL=postgres_url, _env_file=None)
    with (
        open_app(settings, clock) as app,
        open_runner(app, poll_interval=3600) as runner,
        runner.db.transaction() as txn,
    ):
        scans = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'notifications'"
        txn.execute("SET LOCAL enable_seqscan = off")
        before = txn.all(scans)[0]["seq_scan"]
        found = list(txn.rows_in(UNREAD_MESSAGES, "order_id", [str(uuid4())]))
        after = txn.all(scans)[0]["seq_scan"]
    assert found == []
    assert after - before == 0
