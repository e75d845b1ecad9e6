"""``ledger worker``: the projections and the ledger's timers without the API, until SIGTERM
or SIGINT; then it finishes the batch in hand and stops."""

from __future__ import annotations

import argparse
import signal
import threading

from api.cli.common import Subcommands, console
from api.runtime import Runtime
from ledger.settings import Settings


def add_parser(commands: Subcommands) -> None:
    worker = commands.add_parser("worker", help="run the projections and timers, without the API")
    worker.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with Runtime(settings) as runtime:
        runtime.start()
        console.print(
            f"worker running: {', '.join(runtime.runner.projections)};"
            " timers: payment expiry, funds clearance, order deadlines"
        )
        stopping.wait()
    console.print("worker stopped")
    return 0
