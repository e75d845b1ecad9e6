"""``projections.as_of.replay``: the store replayed up to a past moment gives the read models as
they were then, on both stores.

Orders are driven with the fake clock a minute on before each; at the moment ``T`` a live
runner captures every read-model table; then more commands (later than ``T``) move those
orders on and add others. The replay at ``T`` must equal the capture row for row, positions
included (the replay keeps notification ids), and its figures must be those the live
queries answered at ``T``.
"""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.projection_helpers import (
    GATEWAY,
    LIFECYCLES,
    SUPPORT,
    Placed,
    drive_order,
    dump,
    head,
    open_gig,
    open_runner,
    tracked,
)

from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, OrderStatus, Package, PaymentStatus
from ledger.errors import Conflict
from ledger.money import from_centimes
from ledger.service import LedgerApp
from ledger.settings import Settings, load_settings
from projections.as_of import replay as as_of
from projections.as_of.replay import (
    SUMMARY_PROJECTIONS,
    AsOfSummary,
    event_time_reader,
    replay_as_of,
)
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

FREELANCERS = [Caller("ana"), Caller("ben")]
CLIENTS = [Caller("cara"), Caller("dan"), Caller("ben")]


def drive_timed(
    app: LedgerApp, clock: FakeClock, rng: random.Random, gigs: list[Any], lifecycles: list[str]
) -> list[Placed]:
    """One order per lifecycle, the clock a minute on before each (an order's own steps
    share its minute)."""
    placed = []
    for lifecycle in lifecycles:
        clock.advance(minutes=1)
        gig_id = rng.choice(gigs)
        owner = app.get_gig(gig_id).freelancer_id
        client = rng.choice([c for c in CLIENTS if c.id != owner])
        placed.append(drive_order(app, gig_id, client, lifecycle, rng))
    return placed


def move_on(app: LedgerApp, clock: FakeClock, orders: list[Placed]) -> None:
    """Later commands on orders that were still open: payments, work, cancellations."""
    for order in orders:
        clock.advance(minutes=1)
        oid, client, freelancer = (
            order.order_id,
            Caller(order.client_id),
            Caller(order.freelancer_id),
        )
        if order.lifecycle == "placed":
            payment = app.create_payment(client, oid, "credit_card").aggregate
            app.confirm_payment(GATEWAY, payment.id, f"tx-{oid}", payment.amount, "MAD")
        elif order.lifecycle == "payment_pending":
            app.fail_payment(GATEWAY, payment_id_for(oid), "card declined", f"tx-{oid}")
        elif order.lifecycle in ("paid", "accepted"):
            if order.lifecycle == "paid":
                app.accept_order(freelancer, oid)
            app.deliver_order(freelancer, oid, "done")
            app.complete_order(client, oid)
        elif order.lifecycle == "delivered":
            app.complete_order(client, oid)
            app.review_order(client, oid, 4, "good")
        elif order.lifecycle == "declined_cancel":
            app.cancel_order(SUPPORT, oid, CancelReason.POLICY_VIOLATION, "spam")


def live_figures(runner: ProjectionRunner) -> dict[str, Any]:
    """What the live queries answer: orders and payments per status (count, sums, in MAD,
    read page by page as the API reads them), every account, and the trial balance."""
    models = ReadModels(runner.db)

    def every(list_page: Any, status: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            after = items[-1]["id"] if items else None
            page = list_page(status=status, limit=100, starting_after=after)
            items += page.data
            if not page.has_more:
                return items

    orders = {s.value: every(models.orders.page, s.value) for s in OrderStatus}
    payments = {s.value: every(models.payments.page, s.value) for s in PaymentStatus}
    return {
        "orders": {s: (len(o), sum(x["totalAmount"] for x in o)) for s, o in orders.items()},
        "payments": {
            s: (len(p), sum(x["amount"] for x in p), sum(x["refundedAmount"] for x in p))
            for s, p in payments.items()
        },
        "accounts": models.escrow.accounts(),
        "trial_balance": models.escrow.trial_balance(),
    }


def summary_figures(summary: AsOfSummary) -> dict[str, Any]:
    """The same figures, from the replay's summary (centimes → MAD)."""
    mad = from_centimes
    return {
        "orders": {s: (f.count, mad(f.amount)) for s, f in summary.orders.items()},
        "payments": {
            s: (f.count, mad(f.amount), mad(f.refunded)) for s, f in summary.payments.items()
        },
        "accounts": [
            {
                "account": a.account,
                "debits": mad(a.debits),
                "credits": mad(a.credits),
                "balance": mad(a.balance),
            }
            for a in summary.accounts
        ],
        "trial_balance": {
            "debits": mad(summary.debits),
            "credits": mad(summary.credits),
            "balanced": summary.balanced,
        },
    }


@contextmanager
def replayed_store(path: Path, tmp_path: Path, clock: FakeClock) -> Iterator[ProjectionRunner]:
    """A runner on the temporary store a replay left (it applies nothing: caught up)."""
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{path}",
        LEDGER_VAR_DIR=str(tmp_path / "var-replayed"),
        _env_file=None,
    )
    with open_app(settings, clock) as app, open_runner(app) as runner:
        yield runner


@pytest.mark.parametrize("parallel", [False, True], ids=["one process", "two processes"])
def test_the_replay_at_a_past_time_equals_the_read_models_captured_then(
    stored_app: LedgerApp, clock: FakeClock, tmp_path: Path, parallel: bool
) -> None:
    app, rng = stored_app, random.Random(7)
    gigs = [open_gig(app, freelancer) for freelancer in FREELANCERS]
    early = drive_timed(app, clock, rng, gigs, list(LIFECYCLES) * 2)
    with pytest.raises(Conflict):  # on PostgreSQL the rolled-back insert leaves a gap in ids
        app.place_order(CLIENTS[0], gigs[0], "basic", order_id=early[0].order_id)
    drive_timed(app, clock, rng, gigs, ["completed", "paid"])
    moment = clock.now
    with open_runner(app) as live:
        live.run_once()
        captured, captured_figures = dump(live), live_figures(live)
        at_moment = head(app)
        clock.advance(seconds=1)
        move_on(app, clock, early)
        drive_timed(app, clock, rng, gigs, rng.sample(LIFECYCLES, 8))
        basic = app.get_gig(gigs[0]).packages["basic"]
        revised = Package("basic", basic.price + 100, basic.delivery_days, basic.revisions, "New")
        app.revise_gig(FREELANCERS[0], gigs[0], packages=[revised])
        live.run_once()
        later = dump(live)
    assert later != captured and head(app) > at_moment, "the live read models moved on"
    assert captured_figures["trial_balance"]["balanced"]

    workdir = tmp_path / "as-of"
    workdir.mkdir()
    summary = replay_as_of(app, moment, workdir, projections=None, parallel=parallel)

    assert summary.position == at_moment
    assert summary.events == len(app.recorder.select_notifications(1, 100_000, stop=at_moment))
    assert summary.later == head(app) - at_moment and summary.head == head(app)
    assert summary_figures(summary) == captured_figures
    assert (workdir / "as-of-side.db").exists() is parallel
    with replayed_store(workdir / "as-of.db", tmp_path, clock) as replayed:
        assert set(summary.projections) == set(replayed.projections)
        assert tracked(replayed) == dict.fromkeys(replayed.projections, at_moment)
        assert dump(replayed) == captured


def test_by_default_only_what_the_summary_reads_is_replayed(
    stored_app: LedgerApp, clock: FakeClock, tmp_path: Path
) -> None:
    """Orders, payments and the escrow ledger (the gigs and the audit chain are not
    printed, so not built); their figures are the same as with every projection."""
    app = stored_app
    gigs = [open_gig(app, freelancer) for freelancer in FREELANCERS]
    drive_timed(app, clock, random.Random(3), gigs, list(LIFECYCLES))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    some = replay_as_of(app, clock.now, tmp_path / "a")
    every = replay_as_of(app, clock.now, tmp_path / "b", projections=None)
    assert some.projections == tuple(sorted(SUMMARY_PROJECTIONS))
    assert summary_figures(some) == summary_figures(every)
    assert some.events == every.events == head(app)
    with replayed_store(tmp_path / "a" / "as-of.db", tmp_path, clock) as replayed:
        positions = tracked(replayed)
        assert {n for n, p in positions.items() if p} == set(SUMMARY_PROJECTIONS)


def test_each_event_is_judged_by_its_own_time_and_a_history_is_cut_at_its_first_later_one(
    stored_app: LedgerApp, clock: FakeClock, tmp_path: Path
) -> None:
    """A command stamped after the moment can sit in the log before one stamped at or
    before it (a slow commit; a clock stepping back): the later event is left out, the
    earlier kept; and an order's events after its first later one are left out too, as
    ``GET /v1/orders/{id}?asOf=`` cuts it, so no history has a hole."""
    app = stored_app
    [gig] = [open_gig(app, FREELANCERS[0])]
    fl, client = FREELANCERS[0], CLIENTS[0]
    placed = [drive_order(app, gig, client, "paid", random.Random(1)) for _ in range(2)]
    first, second = (p.order_id for p in placed)
    moment = clock.advance(minutes=10)
    clock.now = moment + timedelta(hours=1)
    app.accept_order(fl, first)  # after the moment
    clock.now = moment - timedelta(minutes=1)
    app.deliver_order(fl, first, "early stamp, but after a later event of its order")
    kept = app.accept_order(fl, second).position  # at or before the moment: kept

    (tmp_path / "w").mkdir()
    summary = replay_as_of(app, moment, tmp_path / "w")
    assert (summary.events, summary.later, summary.position) == (head(app) - 2, 2, kept)
    with replayed_store(tmp_path / "w" / "as-of.db", tmp_path, clock) as replayed:
        models = ReadModels(replayed.db)
        for order_id, stage in ((first, "awaiting_acceptance"), (second, "in_progress")):
            as_then = app.get_order(SUPPORT, order_id, as_of=moment)
            row = models.orders.get(str(order_id))
            assert row is not None
            assert (row["version"], row["stage"]) == (as_then.version, stage)
            assert str(as_then.stage) == stage
        accepted = replayed.db.read(
            "SELECT position FROM order_history WHERE event = 'OrderAccepted'"
        )
        assert accepted == [{"position": kept}], "positions are the live store's, gaps and all"


@pytest.mark.parametrize("parallel", [False, True], ids=["one process", "two processes"])
def test_before_the_first_event_everything_is_zero_and_balanced(
    stored_app: LedgerApp, clock: FakeClock, tmp_path: Path, parallel: bool
) -> None:
    app = stored_app
    gigs = [open_gig(app, freelancer) for freelancer in FREELANCERS]
    drive_timed(app, clock, random.Random(5), gigs, ["completed", "paid"])
    before = datetime(2020, 1, 1, tzinfo=clock.now.tzinfo)
    summary = replay_as_of(app, before, tmp_path, parallel=parallel)
    assert (summary.events, summary.position, summary.later) == (0, 0, head(app))
    assert {f.count for f in (*summary.orders.values(), *summary.payments.values())} == {0}
    assert (summary.accounts, summary.debits, summary.credits) == ([], 0, 0)
    assert summary.balanced and summary.unbalanced == []


def test_a_naive_moment_is_refused(stored_app: LedgerApp, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        replay_as_of(stored_app, datetime(2026, 1, 5, 10, 0), tmp_path)


def test_the_quick_time_reader_agrees_with_decoding_every_event(
    stored_app: LedgerApp, clock: FakeClock
) -> None:
    """The replay slices each event's time out of its bytes rather than decoding it: the
    same datetimes, for every kind of event the store holds."""
    app = stored_app
    gigs = [open_gig(app, freelancer) for freelancer in FREELANCERS]
    drive_timed(app, clock, random.Random(9), gigs, list(LIFECYCLES))
    stored = app.recorder.select_notifications(start=1, limit=10_000)
    quick = event_time_reader(app)
    assert len({n.topic for n in stored}) > 10
    for notification in stored:
        decoded = app.mapper.to_domain_event(notification)
        assert quick(notification) == decoded.timestamp  # type: ignore[attr-defined]


def test_a_store_with_compressed_events_replays_through_the_same_compressor(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    """The temporary store takes the source's transcoding settings (here zlib), so it
    decodes the copied bytes, and the times are then read by decoding."""
    env = {
        **settings.eventsourcing_env(),
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    }
    with LedgerApp(env, clock=clock) as app:
        assert app.mapper.compressor is not None
        gigs = [open_gig(app, freelancer) for freelancer in FREELANCERS]
        drive_timed(app, clock, random.Random(2), gigs, list(LIFECYCLES))
        moment = clock.now
        with open_runner(app) as live:
            live.run_once()
            captured = live_figures(live)
        clock.advance(minutes=1)
        drive_timed(app, clock, random.Random(3), gigs, ["completed", "mutual_cancel"])
        summary = replay_as_of(app, moment, tmp_path)
    assert summary_figures(summary) == captured
    assert summary.later > 0
    assert captured["trial_balance"]["debits"] > Decimal(0)


def test_a_failing_second_process_fails_the_replay_with_its_traceback(
    stored_app: LedgerApp, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its store cannot be opened (a folder that does not exist): the replay raises what
    went wrong there, as soon as it hears of it or at the latest once its own part is done,
    and leaves no process behind."""
    app = stored_app
    gigs = [open_gig(app, freelancer) for freelancer in FREELANCERS]
    drive_timed(app, clock, random.Random(4), gigs, list(LIFECYCLES))
    real = as_of.target_env

    def elsewhere(source: LedgerApp, path: Path) -> dict[str, str]:
        if path.name == "as-of-side.db":
            path = tmp_path / "missing" / path.name
        return real(source, path)

    monkeypatch.setattr(as_of, "target_env", elsewhere)
    with pytest.raises(RuntimeError, match=r"second process \(orders\) failed") as failed:
        replay_as_of(app, clock.now, tmp_path, parallel=True)
    assert "Traceback" in str(failed.value) and "unable to open database file" in str(failed.value)
    assert multiprocessing.active_children() == []
