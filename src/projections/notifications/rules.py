"""Which events make which notifications, for whom, saying what: pure functions of the
events, so a rebuild makes the notifications an incremental run made, to the letter.

- ``OrderPaymentConfirmed``: ``payment.confirmed`` to the client, ``order.status_changed``
  to both parties, ``order.received`` to the freelancer;
- ``OrderDelivered``: ``order.delivered`` to the client;
- ``OrderCompleted``: ``order.status_changed`` to both, ``review.requested`` to the client;
- ``OrderCancelled``: ``order.status_changed`` to both;
- ``DisputeResolved``: ``order.status_changed`` to both, and ``review.requested`` to the client
  when the order ends completed (released or split);
- ``OrderMarkedLate`` (the clock: past its due date, not delivered): ``order.late`` to both;
- ``ExtensionRequested``: ``order.extension_requested`` to the client;
- ``ExtensionAccepted`` and ``ExtensionDeclined``: ``order.extension_answered`` to the
  freelancer;
- ``MessagePosted`` (a conversation's): ``order.message`` to the party who did not write it
  (both, when staff wrote), one unread per order however many messages follow it.

``payment.confirmed`` comes from ``OrderPaymentConfirmed``, not ``PaymentSucceeded``: that
event exists exactly when a payment started a pending order, once per payment. A payment
that arrives after its order was cancelled is refunded in the same write and makes no
notification: "confirmed" would be false, and the parties were told of the cancellation.

Within one event, a recipient's notifications are listed in the order they happen (the
payment is confirmed, then the order starts); newest first, the last one is on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from uuid import NAMESPACE_URL, uuid5

from ledger.clock import iso
from ledger.money import from_centimes
from projections.base import Envelope

NOTIFICATION_NAMESPACE: Final = uuid5(NAMESPACE_URL, "https://gig-ledger/notifications")
ORDER_EVENTS: Final = (
    "OrderPlaced",
    "OrderPaymentConfirmed",
    "OrderDelivered",
    "OrderCompleted",
    "OrderCancelled",
    "DisputeResolved",
    "OrderMarkedLate",
    "ExtensionRequested",
    "ExtensionAccepted",
    "ExtensionDeclined",
)
"""Read by name: ``OrderMarkedLate`` is read from the moment the Order declares it."""
MESSAGE: Final = "MessagePosted"
"""A conversation's event: ``order.message`` to the other party, or both when staff wrote."""
SLOTS: Final = 10
"""Notifications one event may make (at most four today): a notification's ``position`` is
``event position * SLOTS + its index``, unique and in log order, for paging."""

CANCEL_REASONS: Final = {
    "payment_failed": "the payment did not go through",
    "client_withdrew": "the client withdrew it before paying",
    "mutual_agreement": "both parties agreed",
    "policy_violation": "support cancelled it for a policy violation",
    "refunded_at_gateway": "the payment was refunded",
}
OUTCOMES: Final = {
    "release": "the payment is released to the freelancer; the order is completed",
    "refund": "the client is refunded; the order is cancelled",
    "split": "the payment is split between the parties; the order is completed",
}


@dataclass(frozen=True)
class Parties:
    client_id: str
    freelancer_id: str


@dataclass(frozen=True)
class Notification:
    """One notification to make (or not, if its recipient turned them off)."""

    id: str
    position: int
    recipient_id: str
    type: str
    order_id: str
    message: str
    created_at: str


def notifications_of(envelope: Envelope, parties: Parties) -> list[Notification]:
    """The notifications ``envelope`` (an order event other than ``OrderPlaced``) makes."""
    kind, event = envelope.kind, envelope.event
    name = short(event.originator_id)
    client, freelancer = parties.client_id, parties.freelancer_id
    both = (client, freelancer)
    made: list[tuple[str, str, str]] = []  # (recipient, type, message)
    if kind == "OrderPaymentConfirmed":
        paid = f"{from_centimes(int(event.amount))} MAD"
        made.append(
            (client, "payment.confirmed", f"Your payment of {paid} for order {name} is confirmed.")
        )
        made += _status(both, f"Order {name} is now processing: paid, waiting for the freelancer.")
        made.append(
            (
                freelancer,
                "order.received",
                f"New order {name}: {paid} paid into escrow. Accept it to start.",
            )
        )
    elif kind == "OrderDelivered":
        made.append(
            (
                client,
                "order.delivered",
                f"Order {name} was delivered: complete it, or ask for a revision.",
            )
        )
    elif kind == "OrderCompleted":
        how = " automatically, as the delivery went unanswered" if _by_clock(event) else ""
        made += _status(both, f"Order {name} is now completed{how}.")
        made.append(
            (
                client,
                "review.requested",
                f"Order {name} is complete: how did it go? Leave a review.",
            )
        )
    elif kind == "OrderCancelled":
        made += _status(both, f"Order {name} is now cancelled: {_cancel_reason(event)}.")
    elif kind == "DisputeResolved":
        outcome = OUTCOMES.get(str(event.outcome), str(event.outcome))
        made += _status(both, f"The dispute on order {name} is resolved: {outcome}.")
        if str(event.outcome) != "refund":  # released or split: completed, so reviewable
            made.append((client, "review.requested", f"Order {name} is complete: review it."))
    elif kind == "OrderMarkedLate":
        due = getattr(event, "due_at", None)
        when = f" ({iso(due)})" if due is not None else ""
        made += [(who, "order.late", f"Order {name} is past its due date{when}.") for who in both]
    elif kind == "ExtensionRequested":
        ask = f"{event.days} more day{'s' if event.days != 1 else ''}"
        made.append(
            (client, "order.extension_requested",
             f"The freelancer asks for {ask} on order {name}: accept or decline.")
        )  # fmt: skip
    elif kind == "ExtensionAccepted":
        made.append(
            (freelancer, "order.extension_answered",
             f"The client accepted the extension of order {name}: due {iso(event.due_at)}.")
        )  # fmt: skip
    elif kind == "ExtensionDeclined":
        made.append(
            (freelancer, "order.extension_answered",
             f"The client declined the extension of order {name}: the due date stays.")
        )  # fmt: skip
    assert len(made) <= SLOTS, "positions of one event's notifications must not collide"
    return [_notification(envelope, slot, *item) for slot, item in enumerate(made)]


def message_notifications(envelope: Envelope, parties: Parties) -> list[Notification]:
    """``order.message`` for whoever did not write it: the other party, or both parties when
    staff wrote (the projection makes one per recipient until it is read)."""
    event = envelope.event
    author = event.actor
    name = short(event.order_id)
    recipients = [who for who in (parties.client_id, parties.freelancer_id) if who != author.id]
    who = {"client": "the client", "freelancer": "the freelancer"}.get(author.role, "support")
    message = f"New message on order {name} from {who}."
    made = [
        Notification(
            id=notification_id(event, recipient, "order.message"),
            position=envelope.position * SLOTS + slot,
            recipient_id=recipient,
            type="order.message",
            order_id=str(event.order_id),
            message=message,
            created_at=iso(event.timestamp) or "",
        )
        for slot, recipient in enumerate(recipients)
    ]
    return made


def _status(recipients: tuple[str, ...], message: str) -> list[tuple[str, str, str]]:
    return [(who, "order.status_changed", message) for who in recipients]


def _by_clock(event: Any) -> bool:
    return getattr(getattr(event, "actor", None), "role", None) == "clock"


def _cancel_reason(event: Any) -> str:
    reason = str(event.reason)
    if reason == "mutual_agreement" and _by_clock(event):
        return "the cancellation request went unanswered"
    return CANCEL_REASONS.get(reason, reason.replace("_", " "))


def _notification(
    envelope: Envelope, slot: int, recipient: str, kind: str, message: str
) -> Notification:
    event = envelope.event
    return Notification(
        id=notification_id(event, recipient, kind),
        position=envelope.position * SLOTS + slot,
        recipient_id=recipient,
        type=kind,
        order_id=str(event.originator_id),
        message=message,
        created_at=iso(event.timestamp) or "",
    )


def notification_id(event: Any, recipient: str, kind: str) -> str:
    """Stable across rebuilds: named by the event, the recipient and the type."""
    name = f"{event.originator_id}:{event.originator_version}:{recipient}:{kind}"
    return str(uuid5(NOTIFICATION_NAMESPACE, name))


def short(order_id: Any) -> str:
    """How messages name an order: the first eight characters of its id."""
    return str(order_id)[:8]
