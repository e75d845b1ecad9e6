"""What one PostgreSQL primary takes through the ledger's store (prints figures; not a test).

    .venv/bin/python -m bench.primary [--threads 16] [--seconds 5] [--sizes 1,4,16,64,256]

Every insert transaction of the store takes the events table's lock (``LOCK TABLE … IN
EXCLUSIVE MODE``, so that commit order is notification order), so one primary records one
insert transaction at a time, whoever sends it. This measures how many such transactions,
and how many events, it records per second when each transaction holds ``size`` events:
``--threads`` threads insert in a loop through the ledger's own recorder
(``AppendOnlyPostgresRecorder``, the one ``ledger serve`` uses) into a fresh database, each
event the size of an ``OrderPlaced`` (about 600 bytes of state). Size 1 is one command per
transaction (group commit off, or the bare baseline); the larger sizes are what group commit
gathers under load. It prints the cores this process (the client) and the database's
backends used, so a figure bound by the client's interpreter is told from one bound by the
database. ``docs/scaling.md`` builds its estimates on these figures.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from bench.http import _backends
from bench.stores import store_url
from ledger.bootstrap import build_ledger
from ledger.settings import load_settings

STATE = b'{"pad":"' + b"x" * 590 + b'"}'
TOPIC = "bench.primary:Inserted"


def measure(
    recorder: object, threads: int, seconds: float, size: int, dbname: str
) -> tuple[float, float, float, float]:
    """(transactions/s, events/s, this process's cores, the database's cores) for
    ``threads`` inserting ``size`` events at a time."""
    insert = recorder.insert_events  # type: ignore[attr-defined]
    done = [0] * threads
    stop = time.monotonic() + seconds

    def run(slot: int) -> None:
        while time.monotonic() < stop:
            insert([StoredEvent(uuid4(), 1, TOPIC, STATE) for _ in range(size)])
            done[slot] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    backends = _backends(dbname)
    mine = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    client = (used.ru_utime + used.ru_stime - mine.ru_utime - mine.ru_stime) / elapsed
    server = sum(cpu - backends.get(pid, 0.0) for pid, cpu in _backends(dbname).items())
    return sum(done) / elapsed, sum(done) * size / elapsed, client, server / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sizes", default="1,4,16,64,256", help="events per transaction")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with store_url("postgres") as url, tempfile.TemporaryDirectory() as var:
        settings = load_settings(
            LEDGER_DATABASE_URL=url,
            LEDGER_VAR_DIR=var,
            LEDGER_DB_POOL_SIZE=str(args.threads),
            _env_file=None,
        )
        ledger = build_ledger(settings)
        try:
            print(
                f"one PostgreSQL primary, {args.threads} threads, {args.seconds:g} s per size,"
                " through the ledger's recorder"
            )
            print(
                f"{'events/transaction':>20} {'transactions/s':>16} {'events/s':>12}"
                f" {'client cores':>13} {'postgres cores':>15}"
            )
            dbname = url.rsplit("/", 1)[1]
            for size in sizes:
                tps, eps, client, server = measure(
                    ledger.recorder, args.threads, args.seconds, size, dbname
                )
                print(f"{size:>20} {tps:>16,.0f} {eps:>12,.0f} {client:>13.2f} {server:>15.2f}")
        finally:
            ledger.close()


if __name__ == "__main__":
    main()
