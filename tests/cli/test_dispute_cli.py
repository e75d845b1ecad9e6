"""``ledger dispute ORDER_ID``: an order's whole story as support reads it, run in-process by
``main`` on a temporary SQLite store.

The story is written through the application service, as requests would write it, with the
fake clock moved a minute between steps: a 200 MAD order paid, accepted, disputed by the
client, and split by support with 50 MAD back (default fee 20 %: 30 MAD on the 150 kept).
"""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from api.cli import main
from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, DisputeOutcome, Package
from ledger.settings import Settings
from tests.cli.conftest import run_cli
from tests.conftest import FakeClock, open_app

FL, CL = Caller("freelancer-1"), Caller("client-1")
SUPPORT = Caller("support-1", frozenset({"support"}))
REASON = "[bold]half[/bold] done \x1b[31mred"
"""A dispute reason with rich markup and an escape sequence: both must reach the screen
as inert text."""


@pytest.fixture
def settings(cli_settings: Settings) -> Settings:
    return cli_settings


@pytest.fixture
def split(settings: Settings, clock: FakeClock) -> UUID:
    """The disputed order's id, its story in the store."""
    with open_app(settings, clock) as ledger:
        gig = ledger.create_gig(FL, "Logo", [Package("basic", 20_000, 3, 1, "a")]).aggregate.id
        order = ledger.place_order(CL, gig, "basic").aggregate.id
        clock.advance(minutes=1)
        ledger.create_payment(CL, order, "credit_card")
        clock.advance(minutes=1)
        gateway = Caller.system("gateway")
        ledger.confirm_payment(gateway, payment_id_for(order), "tx-42", 20_000, "MAD")
        clock.advance(minutes=1)
        ledger.accept_order(FL, order)
        clock.advance(minutes=1)
        ledger.open_dispute(CL, order, REASON)
        clock.advance(minutes=1)
        ledger.resolve_dispute(SUPPORT, order, DisputeOutcome.SPLIT, 5_000)
    return order


def rows(out: str) -> list[list[str]]:
    """The events table's rows, each cell's wrapped lines joined by one space."""
    found: list[list[str]] = []
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells[0]:
            found.append(cells)
        else:
            joined = zip(found[-1], cells, strict=True)
            found[-1] = [" ".join(part for part in pair if part) for pair in joined]
    return found


def header(out: str) -> dict[str, str]:
    """The lines above the table: ``label  value``."""
    lines = out[: out.index("┏")].splitlines()
    return dict(m.groups() for line in lines if (m := re.match(r"^(\w+) {2,}(.+?)\s*$", line)))


def test_the_story_shows_every_event_with_who_what_and_the_status_after(
    split: UUID, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "dispute", str(split))
    assert (code, err) == (0, "")
    table = rows(out)
    assert [row[0] for row in table] == sorted((row[0] for row in table), key=int)
    shown = [(when, who, what, after) for _, when, who, what, after in table]
    assert shown == [
        ("2026-01-05 09:00:00", "client-1 (client)",
         "OrderPlaced basic package, 200.00 MAD, fee 20 %", "pending awaiting_payment"),
        ("2026-01-05 09:01:00", "client-1 (client)",
         "PaymentCreated 200.00 MAD by credit_card", "pending awaiting_payment"),
        ("2026-01-05 09:01:00", "client-1 (client)",
         "CheckoutOpened checkout opened (token sbx_" + split.hex + ")",
         "pending awaiting_payment"),
        ("2026-01-05 09:02:00", "system:gateway (gateway)",
         "PaymentSucceeded paid (transaction tx-42)", "pending awaiting_payment"),
        ("2026-01-05 09:02:00", "system:gateway (gateway)",
         "OrderPaymentConfirmed 200.00 MAD paid into escrow", "processing awaiting_acceptance"),
        ("2026-01-05 09:03:00", "freelancer-1 (freelancer)",
         "OrderAccepted the freelancer accepted the order", "processing in_progress"),
        ("2026-01-05 09:04:00", "client-1 (client)",
         "DisputeOpened dispute opened: [bold]half[/bold] done \ufffd[31mred",
         "processing in_dispute"),
        ("2026-01-05 09:05:00", "support-1 (support)",
         "DisputeResolved split: 50.00 MAD back to the client, 120.00 MAD to the freelancer,"
         " 30.00 MAD fee", "completed closed"),
        ("2026-01-05 09:05:00", "support-1 (support)",
         "RefundRecorded 50.00 MAD refunded (dispute_split)", "completed closed"),
    ]  # fmt: skip
    assert "\x1b" not in out, "nothing a user typed reaches the terminal as a control code"


def test_the_header_has_the_parties_package_total_status_and_the_payment(
    split: UUID, settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_app(settings, clock) as ledger:
        gig = ledger.get_order(SUPPORT, split).gig_id
    code, out, _ = run_cli(capsys, "dispute", str(split))
    assert code == 0
    assert f"Order {split}" in out
    assert header(out) == {
        "client": "client-1",
        "freelancer": "freelancer-1",
        "gig": str(gig),
        "package": "basic: 200.00 MAD, 3 days, 1 revision, a",
        "total": "200.00 MAD (platform fee 20 %)",
        "status": "completed (closed), dispute resolved: split; 50.00 MAD back to the client;"
        " 120.00 MAD to the freelancer, 30.00 MAD fee",
        "payment": f"success, 200.00 MAD by credit_card, transaction tx-42"
        f" ({payment_id_for(split)})",
        "refunds": "50.00 MAD refunded: 50.00 MAD (dispute_split, 2026-01-05 09:05:00)",
    }


def test_an_order_without_payment_says_so(
    settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_app(settings, clock) as ledger:
        gig = ledger.create_gig(FL, "Logo", [Package("basic", 10_050, 3, 2, "a")]).aggregate.id
        order = ledger.place_order(CL, gig, "basic").aggregate.id
        ledger.cancel_order(CL, order, CancelReason.CLIENT_WITHDREW)
    code, out, _ = run_cli(capsys, "dispute", str(order))
    assert code == 0
    assert [(row[3], row[4]) for row in rows(out)] == [
        ("OrderPlaced basic package, 100.50 MAD, fee 20 %", "pending awaiting_payment"),
        ("OrderCancelled cancelled (client_withdrew)", "cancelled closed"),
    ]
    assert (header(out)["payment"], header(out)["refunds"]) == ("none yet", "none")
    assert header(out)["status"] == "cancelled (closed), client_withdrew"


@pytest.mark.parametrize("kind", ["unknown", "malformed", "payment"])
def test_what_is_not_an_order_is_a_clear_message_and_exit_1(
    split: UUID, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    given = {
        "unknown": "5b1e4c6a-0000-4000-8000-000000000001",
        "malformed": "[red]nope",
        "payment": str(payment_id_for(split)),
    }[kind]
    code, out, err = run_cli(capsys, "dispute", given)
    assert (code, out) == (1, "")
    expected = "[red]nope is not an order id (a UUID)" if kind == "malformed" else "not found"
    assert expected in err and "Traceback" not in err
    if kind != "malformed":
        assert err.strip() == f"order {given} not found"


def test_the_order_id_is_required(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["dispute"])
    assert stopped.value.code == 2
    assert "usage: ledger dispute" in capsys.readouterr().err
