"""Webhook delivery latency (prints figures; not a test).

    .venv/bin/python -m bench.webhooks [--rate 50] [--seconds 10] [--backend postgres|sqlite]

A process assembled as ``ledger serve`` assembles it (``api.runtime.Runtime``: the ledger, the
projections and the dispatcher in their threads) places orders at a steady ``--rate`` for
``--seconds``; an endpoint subscribed to ``order.placed`` points at a receiver on loopback
(``tests.webhook_receiver``). For each order, the latency is the time from the command's
return (its commit) to the receiver holding the delivery. Prints p50, p90, p99 and the worst,
with how many arrived and how many attempts that took.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

from tests.webhook_receiver import receiving

from api.runtime import Runtime
from bench.stores import store_url
from ledger.actors import Caller
from ledger.domain.values import Package
from ledger.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="orders per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    with store_url(args.backend) as url, tempfile.TemporaryDirectory() as var, receiving() as hooks:
        arrived: dict[str, float] = {}
        seen = threading.Condition()
        settings = load_settings(LEDGER_DATABASE_URL=url, LEDGER_VAR_DIR=var, _env_file=None)
        runtime = Runtime(settings)
        with runtime:
            runtime.start()
            ledger = runtime.ledger
            ledger.register_endpoint(
                Caller("bench-admin", frozenset({"admin"})), hooks.url, ["order.placed"], None
            )
            gig = ledger.create_gig(
                Caller("bench-freelancer"), "Bench", [Package("basic", 10_000, 3, 1, "bench")]
            ).aggregate

            def watch() -> None:
                done = 0
                while True:
                    if not hooks.wait_until(lambda got, n=done: len(got) > n, 30):
                        return
                    now = time.perf_counter()
                    with seen:
                        for item in hooks.received[done:]:
                            arrived.setdefault(item.event["id"], now)
                        done = len(hooks.received)
                        seen.notify_all()

            threading.Thread(target=watch, daemon=True).start()
            committed: dict[str, float] = {}
            interval, start = 1 / args.rate, time.perf_counter()
            for n in range(int(args.rate * args.seconds)):
                delay = start + n * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # the load's own pace, not a wait for state
                done = ledger.place_order(Caller(f"bench-client-{n}"), gig.id, "basic")
                committed[f"evt_{done.position}"] = time.perf_counter()
            with seen:
                seen.wait_for(lambda: set(committed) <= set(arrived), 60)
            attempts = runtime.read_models.webhooks.stats().attempts_by_outcome  # so far
    latencies = sorted((arrived[e] - committed[e]) * 1000 for e in committed if e in arrived)
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"{args.backend}: {len(latencies)}/{len(committed)} deliveries arrived at"
        f" {args.rate:g} orders/s; attempts recorded {attempts}"
    )
    print(
        f"commit → receiver: p50 {quantiles[49]:.1f} ms, p90 {quantiles[89]:.1f} ms,"
        f" p99 {quantiles[98]:.1f} ms, max {latencies[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
