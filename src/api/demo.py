"""``ledger demo``: a freelancer, a gig and orders at every step, so a newcomer sees data.

Everything goes through the application service, exactly as requests would; payments are
confirmed by the in-process gateway caller, as the sandbox gateway does after a test card.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, Package
from ledger.service import LedgerApp

FREELANCER = Caller("demo-freelancer")
CLIENT = Caller("demo-client")
GATEWAY = Caller.system("gateway")
PACKAGES = [
    Package("basic", 15_000, 3, 1, "A logo in two colours"),
    Package("standard", 40_000, 5, 3, "A logo and a business card"),
    Package("premium", 90_000, 7, 5, "A full brand identity"),
]


@dataclass(frozen=True)
class Demo:
    gig_id: UUID
    orders: dict[str, UUID]
    position: int


def seed(ledger: LedgerApp) -> Demo:
    """Create the demo gig and four orders: completed, in progress, awaiting payment and
    cancelled. Returns their ids and the position of the last event."""
    gig = ledger.create_gig(FREELANCER, "Logo design", PACKAGES).aggregate
    orders = {
        "completed": _paid(ledger, gig.id, "standard", "tx-demo-1"),
        "in progress": _paid(ledger, gig.id, "basic", "tx-demo-2"),
        "awaiting payment": ledger.place_order(CLIENT, gig.id, "premium").aggregate.id,
        "cancelled": ledger.place_order(CLIENT, gig.id, "basic").aggregate.id,
    }
    done = orders["completed"]
    ledger.accept_order(FREELANCER, done)
    ledger.submit_requirements(CLIENT, done, "Blue and white, please")
    ledger.deliver_order(FREELANCER, done, "Here is your logo")
    ledger.complete_order(CLIENT, done)
    ledger.review_order(CLIENT, done, 5, "Exactly what I wanted")
    ledger.accept_order(FREELANCER, orders["in progress"])
    last = ledger.cancel_order(CLIENT, orders["cancelled"], CancelReason.CLIENT_WITHDREW)
    return Demo(gig.id, orders, last.position)


def _paid(ledger: LedgerApp, gig_id: UUID, package: str, transaction: str) -> UUID:
    order = ledger.place_order(CLIENT, gig_id, package).aggregate
    payment = ledger.create_payment(CLIENT, order.id, "credit_card").aggregate
    ledger.confirm_payment(GATEWAY, payment_id_for(order.id), transaction, payment.amount, "MAD")
    return order.id
