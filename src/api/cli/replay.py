"""``ledger replay --as-of TIME``: the read models as they were at a past moment.

The store is replayed up to TIME (each event judged by its own time; see
``projections.as_of.replay``) through the projections into a temporary SQLite database, which is
deleted afterwards (it goes where ``TMPDIR`` says). Printed on stdout: the orders by
status, the payments by status and the escrow ledger's trial balance as they were then, and
how many events up to which position were replayed; a progress bar on stderr meanwhile, per
phase (copying, applying), each ending full once the replay is done.
Exit 0, or 1 when the books did not balance then (as ``ledger escrow trial-balance``).
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table
from rich.text import Text

from api.cli.common import BAR_COLUMNS, Subcommands, console, moment_argument
from ledger.bootstrap import build_ledger
from ledger.money import from_centimes
from ledger.settings import Settings
from projections.as_of.replay import AsOfSummary, StatusFigures, replay_as_of

PHASES = {"copying": "copying events", "applying": "applying projections"}


def add_parser(commands: Subcommands) -> None:
    replay = commands.add_parser("replay", help="the read models as they were at a past time")
    replay.add_argument(
        "--as-of", required=True, type=moment_argument, metavar="TIME", help="ISO 8601, with zone"
    )
    replay.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    return replay(settings, args.as_of, Console(), console)


def replay(settings: Settings, moment: datetime, out: Console, err: Console) -> int:
    """Replay, print, and answer the exit status (0, or 1 if the books did not balance)."""
    with (
        build_ledger(settings) as ledger,
        tempfile.TemporaryDirectory(prefix="ledger-as-of-") as workdir,
        Progress(*BAR_COLUMNS, console=err) as progress,
    ):
        tasks: dict[str, TaskID] = {}

        def show(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(PHASES.get(phase, phase), total=None)
            progress.update(tasks[phase], completed=done, total=total)

        summary = replay_as_of(ledger, moment, Path(workdir), show)
        # Each phase ends full: what follows the last event kept was left out, so nothing
        # is left to copy or to apply.
        for phase in PHASES:
            show(phase, summary.head, summary.head)
    print_summary(summary, out)
    return 0 if summary.balanced else 1


def print_summary(summary: AsOfSummary, out: Console) -> None:
    out.print(f"[bold]As of {summary.moment.isoformat()}[/bold]")
    orders = Table("status", "orders", "total (MAD)", title="Orders by status")
    _status_rows(orders, summary.orders, refunds=False)
    out.print(orders)
    payments = Table(
        "status", "payments", "amount (MAD)", "refunded (MAD)", title="Payments by status"
    )
    _status_rows(payments, summary.payments, refunds=True)
    out.print(payments)
    _print_trial_balance(summary, out)
    out.print(
        f"{summary.events:,} events up to position {summary.position:,} replayed"
        f" in {summary.seconds:.2f} s ({summary.rate:,.0f} events/s)"
    )
    if summary.later:
        out.print(f"{summary.later:,} later events left out (the log's head was {summary.head:,})")


def _status_rows(table: Table, figures: dict[str, StatusFigures], *, refunds: bool) -> None:
    def cells(figure: StatusFigures) -> list[str]:
        shown = [f"{figure.count:,}", f"{from_centimes(figure.amount):,}"]
        return [*shown, f"{from_centimes(figure.refunded):,}"] if refunds else shown

    for status, figure in figures.items():
        table.add_row(status, *cells(figure))
    table.add_section()
    total = StatusFigures(
        sum(f.count for f in figures.values()),
        sum(f.amount for f in figures.values()),
        sum(f.refunded for f in figures.values()),
    )
    table.add_row("total", *cells(total))


def _print_trial_balance(summary: AsOfSummary, out: Console) -> None:
    table = Table("account", "debits", "credits", "balance", title="Trial balance (MAD)")
    for account in summary.accounts:
        table.add_row(
            Text(account.account),  # a user id is any text: never read as markup
            *(
                f"{from_centimes(amount):,}"
                for amount in (account.debits, account.credits, account.balance)
            ),
        )
    table.add_section()
    debits, credits = from_centimes(summary.debits), from_centimes(summary.credits)
    table.add_row("total", f"{debits:,}", f"{credits:,}", "")
    out.print(table)
    for entry_id in summary.unbalanced:
        out.print(Text(f"entry {entry_id} does not balance", style="red"))
    if summary.balanced:
        out.print("[green]balanced[/green]: total debits equal total credits, in every entry")
    else:
        out.print("[red]NOT balanced[/red]")
