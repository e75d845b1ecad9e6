"""As-of replay benchmark (prints figures; not a test).

    .venv/bin/python -m bench.replay [--events 100000] [--backend sqlite|postgres|both]
                                     [--runs 3] [--interleave 0]

Writes about ``--events`` events (``bench.projections.fill``: orders through varied
lifecycles), then replays the store as of a moment after its last event with
``projections.as_of.replay_as_of`` -- every event copied into a temporary SQLite store and
projected there (orders, payments, escrow: what ``ledger replay`` prints) -- ``--runs``
times, and reports events/s: events replayed per second of the whole replay, copying and
projecting together, with the CPU seconds of both processes (the wall clock depends on what
else the machine runs). Then the
same in one process, for comparison, and one replay as of a moment before the first event:
the cost of reading and judging the whole log alone.

Target (issue #7): as-of replay >= 20,000 events/s on PostgreSQL over 100,000 events.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.projections import fill
from ledger.bootstrap import build_ledger
from ledger.service import LedgerApp
from ledger.settings import load_settings
from projections.as_of.replay import replay_as_of

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def cpu_seconds() -> tuple[float, float]:
    """CPU time so far of this process and of its ended children (the replay's second
    process): on a busy machine the wall clock alone says little."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    theirs = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime, theirs.ru_utime + theirs.ru_stime


def replay(app: LedgerApp, backend: str, label: str, runs: int, parallel: bool) -> None:
    rates = []
    for run in range(1, runs + 1):
        before = cpu_seconds()
        with tempfile.TemporaryDirectory(prefix="ledger-bench-as-of-") as workdir:
            summary = replay_as_of(app, datetime.now(UTC), Path(workdir), parallel=parallel)
        mine, theirs = (after - was for after, was in zip(cpu_seconds(), before, strict=True))
        rates.append(summary.rate)
        print(
            f"[{backend}] {label} {run}: {summary.events:,} events up to position"
            f" {summary.position:,} in {summary.seconds:.2f} s (CPU {mine:.2f} s here,"
            f" {theirs:.2f} s in the second process): {summary.rate:,.0f} events/s"
        )
    print(f"[{backend}] {label}: median {statistics.median(rates):,.0f} events/s")


def run(backend: str, url: str, events: int, runs: int, interleave: int) -> None:
    settings = load_settings(LEDGER_DATABASE_URL=url, _env_file=None)
    with build_ledger(settings) as app:
        head = fill(app, events, interleave)
        print(f"[{backend}] wrote {head:,} events; load average {os.getloadavg()[0]:.2f}")
        replay(app, backend, "as-of replay", runs, parallel=True)
        replay(app, backend, "in one process", runs, parallel=False)
        before = datetime.now(UTC) - timedelta(days=365)
        with tempfile.TemporaryDirectory(prefix="ledger-bench-as-of-") as workdir:
            summary = replay_as_of(app, before, Path(workdir))
        print(
            f"[{backend}] as of before the first event: {summary.later:,} events read and left"
            f" out in {summary.seconds:.2f} s ({summary.later / summary.seconds:,.0f} events/s)"
        )
        print(f"[{backend}] load average {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--interleave",
        type=int,
        default=0,
        help="orders in flight at once, their events interleaved in the log (default 0)",
    )
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            run("sqlite", url, args.events, args.runs, args.interleave)
    if args.backend in ("postgres", "both"):
        name = f"ledger_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
            run("postgres", url, args.events, args.runs, args.interleave)
        finally:
            with psycopg.connect(ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
