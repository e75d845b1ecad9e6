"""``ledger demo [--if-empty] [--host H] [--port P]``: a freelancer, a gig and orders at every
step, so a newcomer sees data. Its links point where ``ledger serve --host H --port P`` will
answer (in development, unless ``LEDGER_PUBLIC_URL`` is set: ``common.served_at``).

Everything goes through the application service, exactly as requests would; payments are
confirmed by the in-process gateway caller, as the sandbox gateway does after a test card.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from uuid import UUID

from rich.console import Console

from api.cli.common import Subcommands, address_arguments, console, served_at
from api.cli.console_link import sign_in_link
from api.console.sessions import MAX_TICKET_LIFE
from api.http.auth import Authenticator, signing_key
from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, Package
from ledger.service import LedgerApp
from ledger.settings import Settings

FREELANCER = Caller("demo-freelancer")
CLIENT = Caller("demo-client")
GATEWAY = Caller.system("gateway")
PACKAGES = [
    Package("basic", 15_000, 3, 1, "A logo in two colours"),
    Package("standard", 40_000, 5, 3, "A logo and a business card"),
    Package("premium", 90_000, 7, 5, "A full brand identity"),
]


def add_parser(commands: Subcommands) -> None:
    demo = commands.add_parser("demo", help="create demo gigs and orders; print tokens to try")
    demo.add_argument(
        "--if-empty", action="store_true", help="only when the store has no events yet"
    )
    address_arguments(demo)  # of the `ledger serve` its links point to
    demo.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    with build_ledger(settings) as ledger:
        if args.if_empty and ledger.recorder.max_notification_id():
            console.print("the store already holds events: no demo data added")
            return 0
        demo = seed(ledger)
    auth = Authenticator.for_settings(settings)
    base = str(served_at(settings, args.host, args.port).public_url).rstrip("/")
    out = Console(soft_wrap=True)
    out.print(f"[bold]Demo data[/bold] (up to position {demo.position}); gig {demo.gig_id}")
    for label, order_id in demo.orders.items():
        out.print(f"  {label:<17} {base}/v1/orders/{order_id}")
    if signing_key(settings) is None:
        out.print(f"\nTokens come from the identity provider; the console: {base}/console")
        return 0
    out.print("\n[bold]Tokens[/bold] (12 h):")
    for sub, role in ((CLIENT.id, "user"), (FREELANCER.id, "user"), ("demo-support", "support")):
        out.print(f"  {sub:<16} {auth.issue(sub, [role])}")
    out.print(f"\nTry:  curl -H 'Authorization: Bearer <demo-client token>' {base}/v1/orders")
    out.print(f"Docs: {base}/docs")
    link = sign_in_link(settings, args.host, args.port, "demo-support", "support", MAX_TICKET_LIFE)
    out.print(f"Console (support, one use, {MAX_TICKET_LIFE.seconds // 60} min):")
    out.print(f"  {link}")
    return 0


@dataclass(frozen=True)
class Demo:
    gig_id: UUID
    orders: dict[str, UUID]
    position: int


def seed(ledger: LedgerApp) -> Demo:
    """Create the demo gig and five orders: completed, in progress, disputed (delivered, then
    disputed by the client: support's case), awaiting payment and cancelled. Returns their
    ids and the position of the last event."""
    gig = ledger.create_gig(FREELANCER, "Logo design", PACKAGES).aggregate
    orders = {
        "completed": _paid(ledger, gig.id, "standard", "tx-demo-1"),
        "in progress": _paid(ledger, gig.id, "basic", "tx-demo-2"),
        "disputed": _paid(ledger, gig.id, "premium", "tx-demo-3"),
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
    disputed = orders["disputed"]
    ledger.accept_order(FREELANCER, disputed)
    ledger.deliver_order(FREELANCER, disputed, "Three logo variants attached")
    ledger.open_dispute(CLIENT, disputed, "Only one of the three variants was delivered")
    last = ledger.cancel_order(CLIENT, orders["cancelled"], CancelReason.CLIENT_WITHDREW)
    return Demo(gig.id, orders, last.position)


def _paid(ledger: LedgerApp, gig_id: UUID, package: str, transaction: str) -> UUID:
    order = ledger.place_order(CLIENT, gig_id, package).aggregate
    payment = ledger.create_payment(CLIENT, order.id, "credit_card").aggregate
    ledger.confirm_payment(GATEWAY, payment_id_for(order.id), transaction, payment.amount, "MAD")
    return order.id
