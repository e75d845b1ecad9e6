"""The posting rules of the escrow ledger (docs/architecture.md, "Escrow postings"), as pure
functions of the events: the same events always give the same journal entries, so a rebuild
gives the books an incremental run gave, to the centime.

- ``PaymentSucceeded`` (A): debit ``assets:gateway`` A, credit ``liabilities:escrow`` A.
- ``OrderCompleted`` (fee F, net N): debit ``liabilities:escrow`` F+N, credit
  ``liabilities:freelancer:<id>`` N and ``revenue:fees`` F.
- ``DisputeResolved`` (F, N): the same, on what the freelancer keeps.
- ``RefundRecorded`` / ``RefundConfirmed`` (R): debit ``liabilities:escrow`` R, credit
  ``assets:gateway`` R.

A dispute split is its release entry plus the refund entry of the payment, saved in the same
transaction: together they are the table's one row (escrow A; gateway R, freelancer and fees
on A-R). The refund is posted from the payment's event because that is when the money leaves
the gateway: at once on the sandbox, and only once confirmed on YouCanPay, where a refund is
made by hand. A refund the gateway made after the order's money was released has nothing
left in escrow to come from: it is taken back from the freelancer's share and the platform's
fee in the proportion they were released (the freelancer's from what has not cleared first),
so neither goes below zero and the fee is never kept on money given back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import NAMESPACE_URL, uuid5

from ledger.clock import iso
from ledger.domain.payment import payment_id_for
from projections.base import Envelope

GATEWAY: Final = "assets:gateway"
ESCROW: Final = "liabilities:escrow"
FEES: Final = "revenue:fees"
ENTRY_NAMESPACE: Final = uuid5(NAMESPACE_URL, "https://gig-ledger/escrow/entries")

PAYMENT_EVENTS: Final = (
    "PaymentCreated",
    "PaymentSucceeded",
    "RefundRecorded",
    "RefundRequested",
    "RefundConfirmed",
)
ORDER_EVENTS: Final = ("OrderCompleted", "DisputeResolved", "FundsCleared")


def freelancer_account(user_id: str) -> str:
    return f"liabilities:freelancer:{user_id}"


def debit_normal(account: str) -> bool:
    """Assets grow with debits; liabilities and revenue with credits."""
    return account.startswith("assets:")


def balance_of(account: str, debits: int, credits: int) -> int:
    """An account's balance with its natural sign: what the gateway holds, what is owed."""
    return debits - credits if debit_normal(account) else credits - debits


@dataclass
class Hold:
    """What the books know of one order's payment: the money escrow holds for it, the
    refunds asked for and not yet made, and the freelancer's share not yet cleared."""

    payment_id: str
    order_id: str
    freelancer_id: str
    amount: int
    escrow: int = 0
    requested: list[tuple[int, str]] = field(default_factory=list)
    """Refunds asked for and not yet made at the gateway, oldest first: (amount, reason)."""
    pending: int = 0
    """The freelancer's released share not yet cleared (nor clawed back)."""
    net_left: int = 0
    fee_left: int = 0
    """What was released to the freelancer and the fees, less what refunds after the
    payout took back: a later refund cannot take back more than this."""
    released_at: str | None = None
    cleared_at: str | None = None


@dataclass(frozen=True)
class Posting:
    account: str
    debit: int = 0
    credit: int = 0


@dataclass(frozen=True)
class Entry:
    """One balanced journal entry, caused by the event at ``position``."""

    id: str
    position: int
    order_id: str
    payment_id: str
    at: str
    description: str
    postings: tuple[Posting, ...]

    @property
    def balanced(self) -> bool:
        return sum(p.debit for p in self.postings) == sum(p.credit for p in self.postings)


def hold_key(envelope: Envelope) -> str:
    """The payment id an event concerns: its own, or (order events) its order's."""
    event = envelope.event
    if envelope.kind in ORDER_EVENTS:
        return str(payment_id_for(event.originator_id))
    return str(event.originator_id)


def entry_id(event: Any) -> str:
    """Stable across rebuilds: one entry per event at most, named by the event."""
    return str(uuid5(ENTRY_NAMESPACE, f"{event.originator_id}:{event.originator_version}"))


class Journal:
    """Turns events into entries, given the holds they concern (``holds``, by payment id,
    loaded by the caller and updated here)."""

    def __init__(self, holds: dict[str, Hold]) -> None:
        self.holds = holds

    def post(self, envelope: Envelope, key: str) -> Iterator[Entry]:
        """The entries ``envelope`` causes (none for most events), its hold (``key``, from
        ``hold_key``) updated."""
        kind, event = envelope.kind, envelope.event
        if kind == "PaymentCreated":
            self._open(event)
            return
        hold = self.holds.get(key)
        if hold is None:  # an order that never had a payment: no money moved
            return
        if kind == "PaymentSucceeded":
            yield self._capture(envelope, hold)
        elif kind == "RefundRequested":
            hold.requested.append((int(event.amount), str(event.reason)))
        elif kind == "RefundRecorded":
            yield self._refund(envelope, hold, int(event.amount), str(event.reason))
        elif kind == "RefundConfirmed":
            amount, reason = hold.requested.pop(0)
            yield self._refund(
                envelope, hold, amount, f"{reason}, made at the gateway as {event.reference}"
            )
        elif kind in ("OrderCompleted", "DisputeResolved"):
            yield from self._release(envelope, hold)
        elif kind == "FundsCleared":
            hold.cleared_at = iso(event.timestamp)

    def _open(self, event: Any) -> None:
        payment_id = str(event.originator_id)
        self.holds[payment_id] = Hold(
            payment_id, str(event.order_id), event.freelancer_id, int(event.amount)
        )

    def _capture(self, envelope: Envelope, hold: Hold) -> Entry:
        hold.escrow += hold.amount
        return self._entry(
            envelope,
            hold,
            f"payment captured into escrow (transaction {envelope.event.transaction_id})",
            [Posting(GATEWAY, debit=hold.amount), Posting(ESCROW, credit=hold.amount)],
        )

    def _release(self, envelope: Envelope, hold: Hold) -> Iterator[Entry]:
        fee, net = int(envelope.event.fee), int(envelope.event.net)
        if fee + net == 0:  # a dispute refunded in full: the refund entry moves the money
            return
        hold.escrow -= fee + net
        hold.net_left, hold.fee_left = net, fee
        if net:  # nothing to clear otherwise: the clearance timer must not keep finding it
            hold.pending, hold.released_at = net, iso(envelope.event.timestamp)
        what = (
            "order completed"
            if envelope.kind == "OrderCompleted"
            else f"dispute resolved ({envelope.event.outcome})"
        )
        yield self._entry(
            envelope,
            hold,
            f"{what}: released to the freelancer, less the platform fee",
            [
                Posting(ESCROW, debit=fee + net),
                Posting(freelancer_account(hold.freelancer_id), credit=net),
                Posting(FEES, credit=fee),
            ],
        )

    def _refund(self, envelope: Envelope, hold: Hold, amount: int, reason: str) -> Entry:
        from_escrow = min(amount, max(hold.escrow, 0))
        hold.escrow -= from_escrow
        from_net, from_fee = _claw_back(hold, amount - from_escrow)
        if from_net or from_fee:
            reason += "; after the payout, taken back from the freelancer and the fee"
        return self._entry(
            envelope,
            hold,
            f"refund to the client: {reason}",
            [
                Posting(ESCROW, debit=from_escrow),
                Posting(freelancer_account(hold.freelancer_id), debit=from_net),
                Posting(FEES, debit=from_fee),
                Posting(GATEWAY, credit=amount),
            ],
        )

    @staticmethod
    def _entry(envelope: Envelope, hold: Hold, description: str, lines: list[Posting]) -> Entry:
        return Entry(
            id=entry_id(envelope.event),
            position=envelope.position,
            order_id=hold.order_id,
            payment_id=hold.payment_id,
            at=iso(envelope.event.timestamp) or "",
            description=description,
            postings=tuple(p for p in lines if p.debit or p.credit),
        )


def _claw_back(hold: Hold, amount: int) -> tuple[int, int]:
    """Split a refund made after the payout between the freelancer's share and the fee, in
    the proportion they were released (round-half-even on the fee's part), never taking
    more than is left of either; what has not cleared is taken first."""
    released = hold.net_left + hold.fee_left
    if amount <= 0 or released <= 0:
        return 0, 0
    from_fee = min(hold.fee_left, fee_share(amount, hold.fee_left, released))
    from_net = min(hold.net_left, amount - from_fee)
    from_fee = amount - from_net  # what the freelancer's share cannot cover
    hold.net_left -= from_net
    hold.fee_left -= from_fee
    hold.pending -= min(from_net, hold.pending)
    return from_net, from_fee


def fee_share(amount: int, fee: int, released: int) -> int:
    """``amount * fee / released`` in whole centimes, round-half-even."""
    quotient, remainder = divmod(amount * fee, released)
    if 2 * remainder > released or (2 * remainder == released and quotient % 2):
        return quotient + 1
    return quotient
