"""What the runner's speed-ups must not change, on both stores: rows written by ``COPY`` read
back exactly (tabs, newlines, backslashes, ``\\N``), events written while the next batch is
read ahead are still applied, and the garbage collector, held off while a batch is applied,
is back on after every batch, failed ones included."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator, Sequence

import pytest
from tests.integration.projection_helpers import (
    drive_orders,
    dump,
    head,
    open_gig,
    open_runner,
    rebuild_all,
    tracked,
)

from ledger.actors import Caller
from ledger.service import LedgerApp
from projections.base import Envelope
from projections.db import Txn
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

NAMES = ["audit", "escrow", "gigs", "messages", "notifications", "orders", "payments", "webhooks"]
FREELANCERS = [Caller("ana"), Caller("ben")]
CLIENTS = [Caller("cara"), Caller("dan")]


class Boom(Exception):
    """The fault a test injects into a projection."""


@pytest.fixture
def runner(stored_app: LedgerApp) -> Iterator[ProjectionRunner]:
    with open_runner(stored_app, poll_interval=3600) as runner:
        yield runner


def test_awkward_text_reads_back_exactly(stored_app: LedgerApp, runner: ProjectionRunner) -> None:
    awkward = 'tab\there, line\nbreak, back\\slash, \\N, \\., quote\' "dq", é, 🙂'
    gig = open_gig(stored_app, FREELANCERS[0])
    client = Caller(awkward)
    order = stored_app.place_order(client, gig, "basic", requirements=awkward).aggregate
    runner.run_once()
    history = runner.db.read(
        "SELECT actor_id, actor_role FROM order_history WHERE order_id = :id", {"id": str(order.id)}
    )
    assert history == [{"actor_id": awkward, "actor_role": "client"}]
    view = ReadModels(runner.db).orders.get(str(order.id))
    assert view is not None and view["requirements"] == awkward
    assert dump(runner) == rebuild_all(runner)


def test_events_written_while_reading_ahead_are_applied(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    gigs = [open_gig(stored_app, freelancer) for freelancer in FREELANCERS]
    drive_orders(stored_app, random.Random(11), 8, gigs, CLIENTS)
    later: list[str] = []

    def progress(position: int, _head: int) -> None:
        # Runs between batches, while the next one is being read ahead (on PostgreSQL).
        if len(later) < 6:
            done = stored_app.place_order(CLIENTS[len(later) % 2], gigs[0], "basic")
            later.append(str(done.aggregate.id))

    runner.rebuild(NAMES, progress, batch_size=4)
    assert len(later) == 6
    assert tracked(runner) == dict.fromkeys(NAMES, head(stored_app))
    models = ReadModels(runner.db)
    assert all(models.orders.get(order_id) is not None for order_id in later)
    assert dump(runner) == rebuild_all(runner)


def test_garbage_collector_is_on_after_every_batch(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    gigs = [open_gig(stored_app, freelancer) for freelancer in FREELANCERS]
    drive_orders(stored_app, random.Random(12), 4, gigs, CLIENTS)
    assert gc.isenabled()
    assert runner.run_once() > 0
    assert gc.isenabled()

    drive_orders(stored_app, random.Random(13), 4, gigs, CLIENTS)
    projection = runner.projections["orders"]

    def apply(batch: Sequence[Envelope], txn: Txn) -> None:
        assert not gc.isenabled()  # held off while the batch is applied
        raise Boom

    projection.apply = apply  # type: ignore[method-assign]
    with pytest.raises(Boom):
        runner.run_once(["orders"])
    assert gc.isenabled()
    del projection.apply
    assert runner.run_once() > 0
    assert gc.isenabled()
    assert dump(runner) == rebuild_all(runner)


def test_collector_left_off_by_its_owner_stays_off(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    open_gig(stored_app, FREELANCERS[0])
    gc.disable()
    try:
        assert runner.run_once() == 2, "the gig's one event, read by the gigs and audit chain"
        assert not gc.isenabled()
    finally:
        gc.enable()
