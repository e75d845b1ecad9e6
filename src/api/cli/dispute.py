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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table
from rich.text import Text

from api.cli.common import Subcommands, console
from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.errors import NotFound
from ledger.money import from_centimes
from ledger.service import Timeline, TimelineEntry
from ledger.settings import Settings

SUPPORT = Caller("cli", frozenset({"support"}))
SHORT = 60
"""Longest free text (a reason, a message) shown in a row; the API has it whole."""


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


def order_status(order: Order) -> str:
    """``completed (closed)``, with how it ended and what was released."""
    words = f"{order.status} ({order.stage})"
    if order.dispute_outcome is not None:
        words += f", dispute resolved: {order.dispute_outcome}"
    elif order.cancel_reason is not None:
        words += f", {order.cancel_reason}"
    if order.refunded:
        words += f"; {mad(order.refunded)} back to the client"
    if order.released_at is not None:
        words += f"; {mad(order.net)} to the freelancer, {mad(order.fee)} fee"
    return words


def payment_status(payment: Payment | None) -> str:
    if payment is None:
        return "none yet"
    words = f"{payment.status}, {mad(payment.amount)} by {payment.payment_method}"
    if payment.transaction_id is not None:
        words += f", transaction {payment.transaction_id}"
    if payment.failure_reason is not None:
        words += f", failed: {payment.failure_reason}"
    return f"{words} ({payment.id})"


def refunds(payment: Payment | None) -> str:
    """Refunds made (and those asked of the gateway, not yet confirmed)."""
    if payment is None:
        return "none"
    made = [
        f"{mad(r['amount'])} ({r['reason']}, {when(r['at'])}"
        + (f", gateway reference {r['reference']})" if r.get("reference") else ")")
        for r in payment.refunds
    ]
    asked = [f"{mad(r['amount'])} requested ({r['reason']})" for r in payment.requested_refunds]
    if not made and not asked:
        return "none"
    return f"{mad(payment.refunded)} refunded: " + "; ".join(made + asked)


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
        if described := summary(entry):
            what.append("\n" + clean(described), style="")
        who = clean(f"{entry.actor.id} ({entry.actor.role})")
        table.add_row(
            Text(str(entry.position)), Text(f"{when(entry.event.timestamp)}\n{who}"), what
        )
    return table


def summary(entry: TimelineEntry) -> str:
    """What the event changed, in words; its type name alone for one this does not know."""
    describe = SUMMARIES.get(entry.kind)
    return describe(vars(entry.event)) if describe else ""


def _placed(e: dict[str, Any]) -> str:
    package = e["package"]
    words = f"{package.package_id} package, {mad(package.price)}, fee {e['fee_rate_bp'] / 100:g} %"
    return words + (f"; requirements: {short(e['requirements'])}" if e["requirements"] else "")


def _cancelled(e: dict[str, Any]) -> str:
    words = f"cancelled ({e['reason']})" + (f": {short(e['note'])}" if e["note"] else "")
    return words + (f"; {mad(e['refund'])} to refund" if e["refund"] else "")


def _resolved(e: dict[str, Any]) -> str:
    return (
        f"{e['outcome']}: {mad(e['refund'])} back to the client, "
        f"{mad(e['net'])} to the freelancer, {mad(e['fee'])} fee"
    )


def _reviewed(e: dict[str, Any]) -> str:
    return f"rated {e['rating']}/5" + (f": {short(e['comment'])}" if e["comment"] else "")


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "OrderPlaced": _placed,
    "OrderPaymentConfirmed": lambda e: f"{mad(e['amount'])} paid into escrow",
    "OrderAccepted": lambda e: "the freelancer accepted the order",
    "RequirementsSubmitted": lambda e: f"requirements: {short(e['text'])}",
    "OrderDelivered": lambda e: f"delivered: {short(e['message'])}",
    "RevisionRequested": lambda e: f"revision asked: {short(e['reason'])}",
    "OrderCompleted": lambda e: f"{mad(e['net'])} to the freelancer, {mad(e['fee'])} fee",
    "OrderReviewed": _reviewed,
    "CancellationRequested": lambda e: f"asked to cancel: {short(e['reason'])}",
    "CancellationWithdrawn": lambda e: "cancellation request withdrawn",
    "CancellationDeclined": lambda e: "cancellation request declined",
    "CancellationAccepted": lambda e: "cancellation agreed",
    "OrderCancelled": _cancelled,
    "DisputeOpened": lambda e: f"dispute opened: {short(e['reason'])}",
    "DisputeResolved": _resolved,
    "OrderRefundedAtGateway": lambda e: f"the gateway refunded {mad(e['amount'])} on its own",
    "FundsCleared": lambda e: "the freelancer's share cleared (available)",
    "PaymentCreated": lambda e: f"{mad(e['amount'])} by {e['payment_method']}",
    "CheckoutOpened": lambda e: "checkout opened",  # its token is a credential: not shown
    "PaymentSucceeded": lambda e: f"paid (transaction {e['transaction_id']})",
    "PaymentFailed": lambda e: f"failed: {short(e['reason'])}",
    "RefundRecorded": lambda e: f"{mad(e['amount'])} refunded ({short(e['reason'])})",
    "RefundRequested": lambda e: f"{mad(e['amount'])} refund asked of the gateway",
    "RefundConfirmed": lambda e: f"refund confirmed (gateway reference {e['reference']})",
    "RefundNoticed": lambda e: "the gateway reported a refund already confirmed by hand",
}


def mad(centimes: int) -> str:
    return f"{from_centimes(centimes):,} MAD"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def short(text: str | None) -> str:
    """Free text on one line, cut at ``SHORT`` characters."""
    line = " ".join((text or "").split())
    return line if len(line) <= SHORT else line[: SHORT - 1] + "…"


def clean(text: str) -> str:
    """``text`` on one line with nothing a terminal would act on: whitespace runs become one
    space, other unprintable characters (escape sequences' ESC among them) become ``�``."""
    return "".join(c if c.isprintable() else "\ufffd" for c in " ".join(text.split()))
