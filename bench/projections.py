"""Projection benchmark (prints figures; not a test).

    .venv/bin/python -m bench.projections [--events 100000] [--backend sqlite|postgres|both]
                                          [--interleave 0]

1. Rebuild throughput: writes about ``--events`` events (orders through varied lifecycles,
   saved many aggregates per transaction so the set-up is quick), then rebuilds every
   projection from zero and reports events/s (events read from the log per second of
   rebuild, summed over the projections that read them). By default each order's events are
   contiguous in the log, the easy case; ``--interleave 3000`` keeps 3,000 orders in flight,
   so most orders span several rebuild batches and are restored from their rows.
2. Lag: with the runner in its thread (as in ``ledger serve``), a writer issues commands at a
   steady rate; for each, the time from the command's return (its commit) until the read
   models have applied its position. Reports p50 and p99.

Targets (issue #3): rebuild >= 20,000 events/s on PostgreSQL; lag p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import threading
import time
import uuid
from collections.abc import Iterator

from bench.stores import BACKENDS, chosen, store_url
from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.gig import Gig
from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.domain.values import Package
from ledger.service import LedgerApp
from ledger.settings import load_settings
from projections.registry import build_runner

GATEWAY = Caller.system("gateway").acting_as("gateway")
PACKAGES = [Package("basic", 25_000, 3, 2, "bench"), Package("premium", 90_000, 7, 3, "bench")]


def _lifecycle(gig: Gig, client: str, n: int) -> Iterator[list[Order | Payment]]:
    """One order and its payment through a life of 8 to 11 events, chosen by ``n``; yields
    the aggregates to save after each step (the first step places and pays)."""
    now = gig.created_on
    me = Caller(client).acting_as("client")
    them = Caller(gig.freelancer_id).acting_as("freelancer")
    order = Order(
        order_id=uuid.uuid4(),
        client_id=client,
        gig_id=gig.id,
        freelancer_id=gig.freelancer_id,
        package=gig.packages["basic"],
        fee_rate_bp=2_000,
        requirements=None,
        actor=me,
        timestamp=now,
    )
    payment = Payment.create(
        order.id, client, gig.freelancer_id, order.total, "credit_card", me, now
    )
    payment.succeed(f"tx-{order.id}", GATEWAY, now)
    order.confirm_payment(payment.id, payment.amount, GATEWAY, now)
    yield [payment, order]  # a batch saves all of an aggregate's events together: the
    # payment's first, so the escrow books see the money captured before it is released
    order.accept(them, now)
    yield [order]
    order.deliver("v1", them, now)
    yield [order]
    if n % 3 == 0:
        order.request_revision("again", me, now)
        yield [order]
        order.deliver("v2", them, now)
        yield [order]
    if n % 5 == 0:
        order.request_cancellation("changed my mind", me, now)
        yield [order]
        payment.refund(order.accept_cancellation(them, now), "mutual_agreement", them, now)
        yield [order, payment]
    else:
        order.complete(me, now)
        yield [order]
        order.review(5, None, me, now)
        yield [order]


def _distinct(aggregates: list[Order | Payment]) -> list[Order | Payment]:
    """Each aggregate once, first occurrence first (aggregates are not hashable)."""
    return list({id(aggregate): aggregate for aggregate in aggregates}.values())


def fill(app: LedgerApp, events: int, interleave: int = 0) -> int:
    """Write about ``events`` events; returns the head position.

    With ``interleave`` 0, each order's events are contiguous in the log (200 orders per
    save). Otherwise ``interleave`` orders advance in lock step, one step per save of all of
    them, so consecutive events of an order lie about ``interleave`` positions apart and an
    order spans several rebuild batches, as in a live log where orders take days.
    """
    gig = app.create_gig(Caller("bench-freelancer"), "Bench gig", PACKAGES).aggregate
    head, n = 0, 0
    while head < events:
        if not interleave:
            batch: list[Order | Payment] = []
            for _ in range(200):
                for step in _lifecycle(gig, f"client-{n % 500}", n):
                    batch += step
                n += 1
            head = app.save(*_distinct(batch))[-1].notification.id
            continue
        lives = [_lifecycle(gig, f"client-{(n + i) % 500}", n + i) for i in range(interleave)]
        n += interleave
        while lives:
            steps = [(life, next(life, None)) for life in lives]
            lives = [life for life, step in steps if step is not None]
            batch = _distinct([aggregate for _, step in steps for aggregate in step or ()])
            for start in range(0, len(batch), 500):  # psycopg's pipeline stalls on huge saves
                head = app.save(*batch[start : start + 500])[-1].notification.id
    return head


def rebuild_throughput(app: LedgerApp) -> tuple[float, int]:
    runner = build_runner(app)
    try:
        started = time.perf_counter()
        total = runner.rebuild(list(runner.projections)).events  # events read, not applications
        return total / (time.perf_counter() - started), total
    finally:
        runner.stop()


def lag(app: LedgerApp, commands: int, rate: float) -> list[float]:
    """Seconds from each command's return to its visibility in the read models."""
    gig = app.create_gig(Caller("lag-freelancer"), "Lag gig", PACKAGES).aggregate
    runner = build_runner(app, poll_interval=5.0)
    runner.run_once()
    runner.start()
    pending: queue.Queue[tuple[int, float] | None] = queue.Queue()
    lags: list[float] = []

    def watch() -> None:
        while (item := pending.get()) is not None:
            position, committed = item
            if runner.wait_for(position, 5.0):
                lags.append(time.perf_counter() - committed)

    watcher = threading.Thread(target=watch)
    watcher.start()
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for i in range(commands):
        done = app.place_order(Caller(f"lag-client-{i % 50}"), gig.id, "basic")
        pending.put((done.position, time.perf_counter()))
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    pending.put(None)
    watcher.join()
    runner.stop()
    return lags


def run(backend: str, url: str, events: int, commands: int, rate: float, interleave: int) -> None:
    settings = load_settings(LEDGER_DATABASE_URL=url, _env_file=None)
    with build_ledger(settings) as app:
        started = time.perf_counter()
        head = fill(app, events, interleave)
        print(f"[{backend}] wrote {head:,} events in {time.perf_counter() - started:.1f} s")
        per_second, applied = rebuild_throughput(app)
        print(f"[{backend}] rebuild: {applied:,} events applied at {per_second:,.0f} events/s")
        lags = sorted(lag(app, commands, rate))
        p50 = statistics.median(lags) * 1000
        p99 = lags[int(len(lags) * 0.99) - 1] * 1000
        print(
            f"[{backend}] lag over {len(lags)} commands at {rate:.0f}/s: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lags[-1] * 1000:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=100.0, help="commands per second")
    parser.add_argument("--backend", choices=BACKENDS, default="both")
    parser.add_argument(
        "--interleave",
        type=int,
        default=0,
        help="orders in flight at once, their events interleaved in the log"
        " (default 0: each order's events contiguous)",
    )
    args = parser.parse_args()
    for backend in chosen(args.backend):
        with store_url(backend) as url:
            run(backend, url, args.events, args.commands, args.rate, args.interleave)


if __name__ == "__main__":
    main()
