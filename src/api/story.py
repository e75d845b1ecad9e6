"""An order's story in words, with amounts in MAD: what each event did, how the order and its
payment stand. One wording for every reader of a dispute: ``ledger dispute`` prints it in a
terminal, the console shows it in a browser; each escapes it for its own medium."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.money import from_centimes

SHORT = 60
"""Longest free text (a reason, a message) shown in a summary; the API has it whole."""


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
    if payment.card is not None:
        words += f" ({card(payment.card)})"
    if payment.cash_code is not None:
        words += f" (CashPlus code {payment.cash_code})"
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


def described(event: object) -> str:
    """What ``event`` changed, in words; nothing for a kind this does not know."""
    describe = SUMMARIES.get(type(event).__name__)
    return describe(vars(event)) if describe else ""


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
    "ExtensionRequested": lambda e: f"{e['days']} more days asked: {short(e['reason'])}",
    "ExtensionAccepted": lambda e: f"extension accepted: due {e['due_at']:%Y-%m-%d %H:%M} UTC",
    "ExtensionDeclined": lambda e: "extension declined",
    "MessagePosted": lambda e: (
        f"message: {short(e['text'])}"
        + (f" ({len(e['attachments'])} attached)" if e["attachments"] else "")
    ),
    "PaymentCreated": lambda e: f"{mad(e['amount'])} by {e['payment_method']}",
    "CashPaymentAwaited": lambda e: "waiting for the cash to be paid at a CashPlus agency",
    "CheckoutOpened": lambda e: (  # its token is a credential: not shown
        f"CashPlus code {e['cash_code']} issued" if e.get("cash_code") else "checkout opened"
    ),
    "PaymentSucceeded": lambda e: (
        f"paid (transaction {e['transaction_id']}"
        + (f", {card(e['card'])})" if e.get("card") else ")")
    ),
    "PaymentFailed": lambda e: f"failed: {short(e['reason'])}",
    "RefundRecorded": lambda e: f"{mad(e['amount'])} refunded ({short(e['reason'])})",
    "RefundRequested": lambda e: f"{mad(e['amount'])} refund asked of the gateway",
    "RefundConfirmed": lambda e: f"refund confirmed (gateway reference {e['reference']})",
    "RefundNoticed": lambda e: "the gateway reported a refund already confirmed by hand",
}


def card(summary: dict[str, str]) -> str:
    """A card as the payment keeps it: ``visa ending 4242``."""
    return f"{summary['brand']} ending {summary['last4']}"


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
