"""``ledger escrow``: the auditor's view of the escrow ledger from the command line.

ledger escrow trial-balance
ledger escrow export --format csv|ndjson [--output FILE]


``trial-balance`` prints every account and the totals, and checks what an auditor checks:
debits equal credits in total and within every entry. ``export`` writes every journal entry,
oldest first, as CSV (one line per posting, for a spreadsheet) or NDJSON (one entry per
line, in the shape of ``GET /v1/ledger/entries``), streaming, so the books of any size fit.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from api.cli.common import Subcommands, add_export, caught_up, console, export_to
from ledger.settings import Settings
from projections.escrow.queries import JOURNAL_COLUMNS, EscrowQueries, journal_rows
from projections.read_models import ReadModels


def add_parser(commands: Subcommands) -> None:
    escrow = commands.add_parser("escrow", help="the escrow ledger, for auditors")
    actions = escrow.add_subparsers(dest="action", required=True)
    actions.add_parser("trial-balance", help="accounts and totals; exit 1 if unbalanced")
    add_export(actions, "every journal entry, oldest first", ("csv", "ndjson"))
    escrow.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    with open_escrow(settings) as escrow:
        if args.action == "trial-balance":
            return print_trial_balance(escrow, Console())
        return export_to(args, lambda out: export(escrow, args.format, out), "journal entries")


@contextmanager
def open_escrow(settings: Settings) -> Iterator[EscrowQueries]:
    """The escrow ledger, brought up to the head of the log first (``common.caught_up``)."""
    with caught_up(settings, console, "escrow") as (_, db):
        yield ReadModels(db).escrow


def print_trial_balance(escrow: EscrowQueries, out: Console) -> int:
    """Print the accounts and totals; 0 when the books balance, 1 when they do not."""
    table = Table("account", "debits", "credits", "balance", title="Trial balance (MAD)")
    for account in escrow.accounts():
        table.add_row(
            Text(account["account"]),  # a user id is any text: never read as markup
            *(f"{account[column]:,}" for column in ("debits", "credits", "balance")),
        )
    totals = escrow.trial_balance()
    table.add_section()
    table.add_row("total", f"{totals['debits']:,}", f"{totals['credits']:,}", "")
    out.print(table)
    unbalanced = escrow.unbalanced_entries()
    for entry_id in unbalanced:
        out.print(Text(f"entry {entry_id} does not balance", style="red"))
    if totals["balanced"] and not unbalanced:
        out.print("[green]balanced[/green]: total debits equal total credits, in every entry")
        return 0
    out.print("[red]NOT balanced[/red]")
    return 1


def export(escrow: EscrowQueries, form: str, out: TextIO) -> int:
    """Write every entry to ``out`` as ``csv`` or ``ndjson``; returns how many entries."""
    writer = csv.writer(out, lineterminator="\n") if form == "csv" else None
    if writer is not None:
        writer.writerow(JOURNAL_COLUMNS)
    count = 0
    for entry in escrow.all_entries():
        count += 1
        if writer is None:
            out.write(json.dumps(entry, default=_number, separators=(",", ":")) + "\n")
            continue
        writer.writerows(journal_rows(entry))
    return count


def _number(value: Any) -> float:
    """MAD amounts as JSON numbers, as the API writes them (two places, exact in a double)."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
