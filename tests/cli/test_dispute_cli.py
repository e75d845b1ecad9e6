"""``ledger dispute ORDER_ID``: an order's whole story as support reads it, run in-process by
``main`` on a temporary SQLite store.

The story is written through the application service, as requests would write it, with the
fake clock moved a minute between steps: a 200 MAD order paid, accepted, disputed by the
client, and split by support with 50 MAD back (default fee 20 %: 30 MAD on the 150 kept).
"""

from __future__ import annotations

import os
import re
from uuid import UUID

import pytest

from api.cli import main
from api.cli.dispute import clean
from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, DisputeOutcome, Package
from ledger.settings import Settings
from tests.cli.conftest import run_cli
from tests.conftest import FakeClock, open_app

FL, CL = Caller("freelancer-1"), Caller("client-1")
SUPPORT = Caller("support-1", frozenset({"support"}))
REASON = "[bold]half[/bold]\tdone\r\n[red]red"
"""A dispute reason with rich markup, a tab and a line break: the markup reaches the screen
as inert text, and the reason stays on one line."""


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


def rows(out: str) -> list[list[list[str]]]:
    """The events table's rows, each cell as its lines."""
    found: list[list[list[str]]] = []
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells[0]:
            found.append([[cell] if cell else [] for cell in cells])
        else:
            for lines, cell in zip(found[-1], cells, strict=True):
                lines.extend([cell] if cell else [])
    return found


def events(out: str) -> list[tuple[str, str, str, str]]:
    """Each row as ``(when, who, "Kind → status, stage", summary)``, at a width where
    nothing wraps."""
    return [(mid[0], mid[1], what[0], " ".join(what[1:])) for _, mid, what in rows(out)]


def expected_story(order: UUID) -> list[tuple[str, str, str, str]]:
    """What ``events`` reads for the ``split`` story."""
    return [
        ("2026-01-05 09:00:00", "client-1 (client)",
         "OrderPlaced → pending, awaiting_payment", "basic package, 200.00 MAD, fee 20 %"),
        ("2026-01-05 09:01:00", "client-1 (client)",
         "PaymentCreated → pending, awaiting_payment", "200.00 MAD by credit_card"),
        ("2026-01-05 09:01:00", "client-1 (client)",
         "CheckoutOpened → pending, awaiting_payment",
         "checkout opened"),
        ("2026-01-05 09:02:00", "system:gateway (gateway)",
         "PaymentSucceeded → pending, awaiting_payment", "paid (transaction tx-42)"),
        ("2026-01-05 09:02:00", "system:gateway (gateway)",
         "OrderPaymentConfirmed → processing, awaiting_acceptance", "200.00 MAD paid into escrow"),
        ("2026-01-05 09:03:00", "freelancer-1 (freelancer)",
         "OrderAccepted → processing, in_progress", "the freelancer accepted the order"),
        ("2026-01-05 09:04:00", "client-1 (client)",
         "DisputeOpened → processing, in_dispute",
         "dispute opened: [bold]half[/bold] done [red]red"),
        ("2026-01-05 09:05:00", "support-1 (support)", "DisputeResolved → completed, closed",
         "split: 50.00 MAD back to the client, 120.00 MAD to the freelancer, 30.00 MAD fee"),
        ("2026-01-05 09:05:00", "support-1 (support)", "RefundRecorded → completed, closed",
         "50.00 MAD refunded (dispute_split)"),
    ]  # fmt: skip


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
    positions = [position for (position,), _, _ in table]
    assert positions == sorted(positions, key=int)
    assert events(out) == expected_story(split)
    assert "\x1b" not in out, "nothing a user typed reaches the terminal as a control code"


def test_control_characters_never_reach_the_terminal() -> None:
    """The ledger refuses them in new text now, but events stored before keep theirs."""
    assert clean("done \x1b[31mred\x07\u200b") == "done \ufffd[31mred\ufffd\ufffd"


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
    assert [(what, summary) for _, _, what, summary in events(out)] == [
        ("OrderPlaced → pending, awaiting_payment", "basic package, 100.50 MAD, fee 20 %"),
        ("OrderCancelled → cancelled, closed", "cancelled (client_withdrew)"),
    ]
    assert (header(out)["payment"], header(out)["refunds"]) == ("none yet", "none")
    assert header(out)["status"] == "cancelled (closed), client_withdrew"


@pytest.mark.parametrize("where", ["COLUMNS=80", "a pipe"])
def test_at_80_columns_and_in_a_pipe_no_id_or_word_is_broken(
    split: UUID,
    settings: Settings,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """Words may wrap onto the next line, but each stays whole: every id and every word of
    every event's summary is found whole among the words printed, and nothing is cut."""
    if where == "COLUMNS=80":
        monkeypatch.setenv("COLUMNS", "80")
    else:  # no terminal anywhere: rich falls back to 80 columns
        monkeypatch.delenv("COLUMNS")

        def no_terminal(fd: int = 0) -> os.terminal_size:
            raise OSError("not a terminal")

        monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    with open_app(settings, clock) as ledger:
        gig = ledger.get_order(SUPPORT, split).gig_id
    code, out, _ = run_cli(capsys, "dispute", str(split))
    assert code == 0
    assert max(len(line) for line in out.splitlines()) == 80
    printed = set(re.sub("[│┃]", " ", out).split())
    ids = {str(split), str(gig), f"({payment_id_for(split)})", "tx-42)",
           "client-1", "freelancer-1", "system:gateway", "support-1"}  # fmt: skip
    words = {word for event in expected_story(split) for part in event for word in part.split()}
    assert sorted(ids - printed) == []
    assert sorted(words - printed) == []
    assert "…" not in out
    assert [position for (position,), _, _ in rows(out)] == [str(n) for n in range(2, 11)]


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
