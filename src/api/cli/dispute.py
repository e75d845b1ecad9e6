"""``ledger dispute ORDER_ID``: an order's whole story, for support reconstructing a dispute.

A header with the order as it stands (parties, package, total, status, payment and refunds),
then one row per event of the order and of its payment, oldest first: its position, when
and who (id and capacity), what happened and the order's status and stage after it, then the
event in words (amounts in MAD). It reads the events themselves (``LedgerApp.order_timeline``)
as support.

It stays readable at 80 columns, the width rich gives a pipe: the position and the "when,
who" column never wrap, and only the last column does, on spaces, so no id or word is ever
broken across lines (a single word wider than the whole column, such as an absurdly long id,
is cut with ``…`` rather than folded).

Ids, reasons and messages are whatever users typed: every one is printed as a ``Text``
(never rich markup), on one line, with control characters replaced, so a reason cannot
restyle the table or send escape sequences to the terminal.
"""

from __future__ import annotations

import argparse
from uuid import UUID

from rich.console import Console
from rich.table import Table
from rich.text import Text

from api.cli.common import Subcommands, console
from api.story import described, mad, order_status, payment_status, plural, refunds, short, when
from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.errors import NotFound
from ledger.service import Timeline
from ledger.settings import Settings

SUPPORT = Caller("cli", frozenset({"support"}))


def add_parser(commands: Subcommands) -> None:
    dispute = commands.add_parser("dispute", help="an order's whole story, event by event")
    dispute.add_argument("order_id", help="the order's id")
    dispute.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    return print_dispute(settings, args.order_id, Console(), console)


def print_dispute(settings: Settings, order_id: str, out: Console, err: Console) -> int:
    """Print the order's story to ``out``: 0; an unknown or malformed id to ``err``: 1."""
    try:
        oid = UUID(order_id)
    except ValueError:
        err.print(Text(f"{clean(order_id)} is not an order id (a UUID)"))
        return 1
    with build_ledger(settings) as ledger:
        try:
            timeline = ledger.order_timeline(SUPPORT, oid)
        except NotFound:
            err.print(Text(f"order {oid} not found"))
            return 1
    out.print(header(timeline))
    out.print(events_table(timeline))
    return 0


def header(timeline: Timeline) -> Table:
    """The order and its payment as they stand now."""
    order, payment = timeline.order, timeline.payment
    grid = Table.grid(padding=(0, 2))
    grid.title = Text(f"Order {order.id}", style="bold")
    grid.add_column(style="bold")
    grid.add_column()
    package = order.package
    rows = {
        "client": order.client_id,
        "freelancer": order.freelancer_id,
        "gig": str(order.gig_id),
        "package": f"{package.package_id}: {mad(package.price)}, "
        f"{plural(package.delivery_days, 'day')}, {plural(package.revisions, 'revision')}, "
        f"{short(package.description)}",
        "total": f"{mad(order.total)} (platform fee {order.fee_rate_bp / 100:g} %)",
        "status": order_status(order),
        "payment": payment_status(payment),
        "refunds": refunds(payment),
    }
    for label, value in rows.items():
        grid.add_row(label, Text(clean(value)))
    return grid


def events_table(timeline: Timeline) -> Table:
    """Three columns, so that the words get the width: five side by side (the position,
    when, who, what, the status after) leave a 36-character token no room at 80 columns."""
    table = Table(title="Events, oldest first")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("when (UTC), who", no_wrap=True)
    table.add_column("what happened → status, stage after", overflow="ellipsis")
    for entry in timeline.entries:
        what = Text(entry.kind, style="bold")
        what.append(f" → {entry.status}, {entry.stage}", style="")
        if words := described(entry.event):
            what.append("\n" + clean(words), style="")
        who = clean(f"{entry.actor.id} ({entry.actor.role})")
        table.add_row(
            Text(str(entry.position)), Text(f"{when(entry.event.timestamp)}\n{who}"), what
        )
    return table


def clean(text: str) -> str:
    """``text`` on one line with nothing a terminal would act on: whitespace runs become one
    space, other unprintable characters (escape sequences' ESC among them) become ``�``."""
    return "".join(c if c.isprintable() else "\ufffd" for c in " ".join(text.split()))
