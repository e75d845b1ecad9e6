"""The console's actions on an order: each an ordinary ledger command, previewed first.

An action is offered only to the roles its command allows and only when the order's state
allows it (``Action.offered``). Its form posts twice:

1. ``step=preview``: the command is decided on the current state without being saved
   (``LedgerApp.preview``): the page shows exactly the events it would record, in words, and
   the escrow postings they would cause (``EscrowQueries.preview``, the projection's rules),
   to the centime, with a confirmation form carrying the order's version and a fresh key.
2. ``step=confirm``: the command runs for real, with the staff member as actor and the
   request id, ``If-Match``-style on the previewed version (an order that moved since is
   refused, so what is recorded is what was shown) and under the key as an idempotency
   receipt (a double submit is answered from the first run, never acting twice). The answer
   shows the events recorded and the postings they made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.actors import Caller
from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.domain.values import CancelReason, DisputeOutcome, OrderStatus, Stage
from ledger.errors import ValidationFailed
from ledger.money import to_centimes
from ledger.receipts import Receipt
from ledger.service import LedgerApp

ACTING_ROLES = frozenset({"support", "admin"})
"""Who may act from the console (auditors read only): the roles of every command here."""

Command = Callable[[], object]


@dataclass(frozen=True)
class Asked:
    """An action as asked for: by whom, on which order (as loaded), with the form's fields,
    to be decided on the order's ``version``."""

    ledger: LedgerApp
    caller: Caller
    order: Order
    payment: Payment | None
    fields: dict[str, str]
    version: int


@dataclass(frozen=True)
class Action:
    name: str
    title: str
    offered: Callable[[Order, Payment | None], bool]
    command: Callable[[Asked], Command]
    """The command to run for what was asked."""


def _money(fields: dict[str, str], name: str) -> int:
    """A MAD amount typed in a form, in centimes.

    Raises: ValidationFailed.
    """
    return to_centimes(fields.get(name, "").strip().replace(",", ""), field=name)


def whole_number(text: str, default: int, field: str) -> int:
    """A version a form was shown with; ``default`` (the current one) when it carries none.

    Raises: ValidationFailed.
    """
    if not text:
        return default
    if not (text.isascii() and text.isdecimal()) or len(text) > 9:
        raise ValidationFailed(f"{field} must be a whole number", field=field)
    return int(text)


def _resolve(asked: Asked) -> Command:
    outcome = asked.fields.get("outcome", "")
    if outcome not in {str(o) for o in DisputeOutcome}:
        choices = ", ".join(str(o) for o in DisputeOutcome)
        raise ValidationFailed(f"outcome must be one of {choices}", field="outcome")
    refund = _money(asked.fields, "refund") if outcome == DisputeOutcome.SPLIT else None
    kind, a = DisputeOutcome(outcome), asked  # a: short, to keep the call on one line
    return lambda: a.ledger.resolve_dispute(a.caller, a.order.id, kind, refund, a.version)


def _cancel(asked: Asked) -> Command:
    note, a = asked.fields.get("note", "").strip() or None, asked
    reason = CancelReason.POLICY_VIOLATION
    return lambda: a.ledger.cancel_order(a.caller, a.order.id, reason, note, a.version)


def _confirm_refund(asked: Asked) -> Command:
    payment = asked.payment
    if payment is None:
        raise ValidationFailed("this order has no payment", field="reference")
    reference = asked.fields.get("reference", "").strip()
    shown = whole_number(asked.fields.get("payment_version", ""), payment.version, "payment")
    return lambda: asked.ledger.confirm_refund(asked.caller, payment.id, reference, shown)


def _sync(asked: Asked) -> Command:
    payment = asked.payment
    if payment is None:
        raise ValidationFailed("this order has no payment", field="payment")
    return lambda: asked.ledger.sync_payment(asked.caller, payment.id)


def _gateway_knows(payment: Payment | None) -> bool:
    return payment is not None and bool(payment.transaction_id or payment.gateway_transaction)


ACTIONS = {
    action.name: action
    for action in (
        Action(
            "resolve",
            "Resolve the dispute",
            lambda order, payment: order.stage == Stage.IN_DISPUTE,
            _resolve,
        ),
        Action(
            "cancel",
            "Cancel for a policy violation",
            lambda order, payment: order.status in (OrderStatus.PENDING, OrderStatus.PROCESSING),
            _cancel,
        ),
        Action(
            "sync",
            "Sync the payment with the gateway",
            lambda order, payment: _gateway_knows(payment),
            _sync,
        ),
        Action(
            "confirm-refund",
            "Confirm a requested refund",
            lambda order, payment: bool(payment is not None and payment.requested_refunds),
            _confirm_refund,
        ),
    )
}


def offered(caller: Caller, order: Order, payment: Payment | None) -> list[Action]:
    """The actions ``caller`` may take on the order as it stands."""
    if not caller.roles & ACTING_ROLES:
        return []
    return [action for action in ACTIONS.values() if action.offered(order, payment)]


def receipt(caller: Caller, key: str, name: str, order_id: UUID, fields: dict[str, str]) -> Receipt:
    """The idempotency receipt a confirmation runs under: the key the preview handed out,
    scoped to the staff member, over the action and its fields."""
    kept = {k: v for k, v in sorted(fields.items()) if k not in ("csrf", "step", "key")}
    request = json.dumps([name, str(order_id), kept], separators=(",", ":"))
    digest = hashlib.sha256(request.encode()).hexdigest()
    return Receipt(caller.id, f"console:{key}", digest, recheck=True)


def fields_of(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields an action's confirmation carries on (all but the step and CSRF)."""
    return {k: v for k, v in form.items() if k not in ("csrf", "step")}
