"""Audit benchmark (prints figures; not a test).

    .venv/bin/python -m bench.audit [--events 100000] [--backend postgres|sqlite|both]

Writes about ``--events`` events (``bench.projections.fill``), chains them (the ``audit``
projection), then times what auditors run: the chain recomputed from the raw store and
compared link by link (``ledger audit verify``), and the same against a digest alone
(``--digest``). The as-of replay has its own benchmark, ``bench.replay``.

Targets (issue #7): verify >= 100,000 events/s on PostgreSQL over 100,000 events (and as-of
replay >= 20,000 events/s: ``bench.replay``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.projections import fill
from bench.stores import BACKENDS, chosen, store_url
from ledger.bootstrap import build_ledger
from ledger.settings import load_settings
from projections.audit.verify import chain_head, verify_chain, verify_digest
from projections.registry import build_runner


def timed(what: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = what()
    return result, time.perf_counter() - started


def run(backend: str, url: str, events: int) -> None:
    settings = load_settings(LEDGER_DATABASE_URL=url, _env_file=None)
    with build_ledger(settings) as app:
        head = fill(app, events)
        runner = build_runner(app)
        try:
            _, seconds = timed(lambda: runner.run_once(["audit"]))
            print(f"[{backend}] chained {head:,} events in {seconds:.1f} s")
            checked, seconds = timed(lambda: verify_chain(app, runner.db))
            assert checked.ok and checked.events == head, checked
            print(f"[{backend}] verify: {head / seconds:,.0f} events/s ({seconds:.2f} s)")
            position, digest = chain_head(runner.db)
            checked, seconds = timed(lambda: verify_digest(app, runner.db, position, digest))
            assert checked.ok, checked
            print(f"[{backend}] verify --digest: {head / seconds:,.0f} events/s")
        finally:
            runner.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--backend", choices=BACKENDS, default="postgres")
    args = parser.parse_args()
    for backend in chosen(args.backend):
        with store_url(backend) as url:
            run(backend, url, args.events)


if __name__ == "__main__":
    main()
