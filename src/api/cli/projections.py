"""``ledger projections status | rebuild [NAME ...]``: each projection's position and lag, and
rebuilding read models from the log."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from api.cli.common import BAR_COLUMNS, Subcommands, console
from ledger.bootstrap import build_ledger
from ledger.settings import Settings
from projections.registry import build_runner
from projections.runner import ProjectionRunner


def add_parser(commands: Subcommands) -> None:
    projections = commands.add_parser("projections", help="inspect or rebuild read models")
    actions = projections.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="each projection's position and lag")
    rebuild = actions.add_parser("rebuild", help="drop read models and replay every event")
    rebuild.add_argument("names", nargs="*", help="projections to rebuild (default: all)")
    projections.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    with build_ledger(settings) as ledger:
        runner = build_runner(ledger)
        try:
            if args.action == "status":
                return print_status(runner)
            return rebuild(runner, args.names or list(runner.projections))
        finally:
            runner.stop()


def print_status(runner: ProjectionRunner) -> int:
    table = Table("projection", "position", "head", "lag", "applied here", "last error")
    for status in runner.status():
        table.add_row(
            status.name,
            str(status.position),
            str(status.head),
            str(status.lag),
            "yes" if status.leading else "no (another process)",
            status.error or "",
        )
    Console().print(table)
    return 0


def rebuild(runner: ProjectionRunner, names: list[str]) -> int:
    unknown = set(names) - set(runner.projections)
    if unknown:
        console.print(f"unknown projections: {', '.join(sorted(unknown))}", markup=False)
        return 2
    started = time.perf_counter()
    with Progress(*BAR_COLUMNS, console=console) as progress:
        task = progress.add_task(f"rebuilding {', '.join(names)}", total=None)

        def show(position: int, head: int) -> None:
            progress.update(task, completed=position, total=head)

        try:
            done = runner.rebuild(names, show)
        except RuntimeError as error:
            console.print(str(error))
            return 1
    seconds = time.perf_counter() - started
    rate = done.events / seconds if seconds else 0.0
    console.print(
        f"rebuilt {', '.join(names)}: {done.events:,} events read, {done.applications:,}"
        f" applications (an event to each projection reading it) in {seconds:.2f} s"
        f" ({rate:,.0f} events/s)"
    )
    return 0
