"""``ledger escrow``: the auditor's trial balance and export, run in-process by ``main``.

The books are made on a temporary SQLite store through the application service, as requests
would make them (default fee 20 %): an order completed (400 MAD: fee 80, net 320), one
cancelled by support and refunded (150), and a dispute split (200, 50 refunded: fee 30 and
net 120 on the 150 kept). That is 7 journal entries with 16 postings.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.cli import main
from api.http.app import create_app
from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, DisputeOutcome, Package
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.escrow.queries import EscrowQueries
from tests.cli.conftest import run_cli
from tests.conftest import FakeClock, open_app

FL, CL = Caller("freelancer-1"), Caller("client-1")
SUPPORT = Caller("support-1", frozenset({"support"}))
HEADER = "entry_id,position,at,order_id,payment_id,description,account,debit,credit"
ENTRY_KEYS = {"id", "orderId", "paymentId", "position", "at", "description", "postings"}
BALANCES = {  # account: debits, credits, balance, as the table prints them
    "assets:gateway": ["750.00", "200.00", "550.00"],
    "liabilities:escrow": ["750.00", "750.00", "0.00"],
    "liabilities:freelancer:freelancer-1": ["0.00", "440.00", "440.00"],
    "revenue:fees": ["0.00", "110.00", "110.00"],
    "total": ["1,500.00", "1,500.00", ""],
}


@pytest.fixture
def settings(cli_settings: Settings) -> Settings:
    return cli_settings


def paid(ledger: LedgerApp, gig_id: UUID, package: str, fl: Caller = FL) -> UUID:
    """An order of ``package`` paid through the gateway and accepted by ``fl``."""
    order = ledger.place_order(CL, gig_id, package).aggregate
    payment = ledger.create_payment(CL, order.id, "credit_card").aggregate
    gateway = Caller.system("gateway")
    ledger.confirm_payment(
        gateway, payment_id_for(order.id), f"tx-{package}", payment.amount, "MAD"
    )
    ledger.accept_order(fl, order.id)
    return order.id


@pytest.fixture
def books(settings: Settings, clock: FakeClock) -> Settings:
    """The three orders' money movements, written to the store (not yet projected)."""
    with open_app(settings, clock) as ledger:
        packages = [Package("basic", 40_000, 3, 1, "a"), Package("standard", 15_000, 3, 1, "b"),
                    Package("premium", 20_000, 3, 1, "c")]  # fmt: skip
        gig = ledger.create_gig(FL, "Logo", packages).aggregate.id
        done = paid(ledger, gig, "basic")
        ledger.deliver_order(FL, done, "here")
        ledger.complete_order(CL, done)
        ledger.cancel_order(SUPPORT, paid(ledger, gig, "standard"), CancelReason.POLICY_VIOLATION)
        split = paid(ledger, gig, "premium")
        ledger.open_dispute(CL, split, "half done")
        ledger.resolve_dispute(SUPPORT, split, DisputeOutcome.SPLIT, 5_000)
    return settings


def table(out: str) -> dict[str, list[str]]:
    """The rows of the printed trial balance: first cell → the other cells."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines()]
    return {row[0]: row[1:] for row in rows if row and row[0] != "account"}


def execute(settings: Settings, sql: str) -> None:
    with closing(sqlite3.connect(settings.sqlite_path)) as db, db:
        assert db.execute(sql).rowcount == 1


def test_the_trial_balance_prints_every_account_and_exits_0(
    books: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """It brings the books up to the log's head itself, prints each account's debits,
    credits and balance and the totals, and says "balanced"."""
    code, out, _ = run_cli(capsys, "escrow", "trial-balance")
    assert code == 0, out
    assert table(out) == BALANCES
    assert "balanced: total debits equal total credits, in every entry" in out
    assert "NOT" not in out and "does not balance" not in out


def test_a_tampered_posting_is_named_and_exits_1(
    books: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """One posting changed behind the ledger's back leaves the account totals equal; the
    check within every entry still finds it, and names that entry."""
    assert run_cli(capsys, "escrow", "trial-balance")[0] == 0
    with closing(sqlite3.connect(books.sqlite_path)) as db:
        [(entry,)] = db.execute("SELECT entry_id FROM escrow_postings LIMIT 1").fetchall()
    execute(books, f"UPDATE escrow_postings SET debit = debit + 1 WHERE entry_id = '{entry}'"
            " AND line = 1")  # fmt: skip
    code, out, _ = run_cli(capsys, "escrow", "trial-balance")
    assert code == 1
    assert f"entry {entry} does not balance" in out and "NOT balanced" in out
    assert out.count("does not balance") == 1
    assert table(out)["total"] == BALANCES["total"], "the totals alone would not show it"


def test_unequal_account_totals_exit_1(books: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "escrow", "trial-balance")[0] == 0
    execute(
        books, "UPDATE escrow_accounts SET credits = credits + 1 WHERE account = 'revenue:fees'"
    )
    code, out, _ = run_cli(capsys, "escrow", "trial-balance")
    assert (code, table(out)["total"]) == (1, ["1,500.00", "1,500.01", ""])
    assert "NOT balanced" in out and "does not balance" not in out


def test_the_csv_export_has_one_line_per_posting(
    books: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Header, then every posting oldest first, each entry balanced; read in batches of 3
    here, so batch edges neither lose nor repeat an entry."""
    monkeypatch.setattr(EscrowQueries.all_entries, "__defaults__", (3,))
    target = books.var_dir / "books.csv"
    code, out, err = run_cli(capsys, "escrow", "export", "--format", "csv", "--output", str(target))
    assert (code, out) == (0, "")
    assert "exported 7 journal entries" in err
    text = target.read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER
    lines = list(csv.DictReader(io.StringIO(text)))
    assert len(lines) == 16
    positions = [int(line["position"]) for line in lines]
    assert positions == sorted(positions) and len(set(positions)) == 7
    per_entry: dict[str, Decimal] = {}
    for line in lines:
        moved = Decimal(line["debit"]) - Decimal(line["credit"])
        per_entry[line["entry_id"]] = per_entry.get(line["entry_id"], Decimal(0)) + moved
    assert set(per_entry.values()) == {Decimal(0)}
    assert sum(Decimal(line["debit"]) for line in lines) == Decimal("1500.00")
    fees = [line["credit"] for line in lines if line["account"] == "revenue:fees"]
    assert fees == ["80.00", "30.00"]


def test_the_ndjson_export_is_what_the_api_shows(
    books: Settings, capsys: pytest.CaptureFixture[str], clock: FakeClock
) -> None:
    """One JSON entry per line on stdout, oldest first, equal to the API's entries (amounts
    as JSON numbers); the CSV goes to stdout too when no file is named."""
    code, out, _ = run_cli(capsys, "escrow", "export", "--format", "ndjson")
    assert code == 0
    exported = [json.loads(line) for line in out.splitlines()]
    assert len(exported) == 7 and all(entry.keys() == ENTRY_KEYS for entry in exported)
    assert all(isinstance(p["debit"], float) for e in exported for p in e["postings"])
    app = create_app(books, clock=clock)
    with TestClient(app) as client:
        token = app.state.auth.issue("auditor-1", ["auditor"])
        answer = client.get(
            "/v1/ledger/entries?limit=100", headers={"Authorization": f"Bearer {token}"}
        )
    assert exported == answer.json()["data"][::-1]
    code, out, _ = run_cli(capsys, "escrow", "export", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == HEADER and len(out.splitlines()) == 17


def test_a_rebuilt_escrow_projection_exports_the_same_books(
    books: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The posting rules are pure functions of the events: replaying them from scratch
    gives the same entries, ids and positions, to the centime."""
    before = run_cli(capsys, "escrow", "export", "--format", "ndjson")[1]
    assert run_cli(capsys, "projections", "rebuild", "escrow")[0] == 0
    assert run_cli(capsys, "escrow", "export", "--format", "ndjson")[1] == before
    assert len(before.splitlines()) == 7


def test_empty_books_balance_and_export_only_a_header(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "escrow", "trial-balance")
    assert (code, table(out)["total"]) == (0, ["0.00", "0.00", ""])
    code, out, err = run_cli(capsys, "escrow", "export", "--format", "csv")
    assert (code, out) == (0, HEADER + "\n") and "exported 0 journal entries" in err


def test_account_names_are_printed_verbatim(
    settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """User ids are any string a token carries; the auditor must see each account as it
    is named (two ids differing only by brackets must not look alike), and a command that
    checks the books must not crash on one."""
    odd = Caller("ann[/]")
    with open_app(settings, clock) as ledger:
        gig = ledger.create_gig(odd, "Logo", [Package("basic", 10_000, 3, 1, "a")]).aggregate.id
        order = paid(ledger, gig, "basic", odd)
        ledger.deliver_order(odd, order, "here")
        ledger.complete_order(CL, order)
    code, out, _ = run_cli(capsys, "escrow", "trial-balance")
    assert code == 0
    assert table(out)["liabilities:freelancer:ann[/]"] == ["0.00", "80.00", "80.00"]


@pytest.mark.parametrize(
    "argv", [["export", "--format", "xml"], ["export"], ["balance"], []], ids=str
)
def test_bad_escrow_arguments_are_argparse_errors(
    settings: Settings, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["escrow", *argv])
    assert stopped.value.code == 2
    assert "usage: ledger escrow" in capsys.readouterr().err


def test_an_export_to_a_folder_that_does_not_exist_is_a_clean_error(
    books: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "books.csv"
    code, _, err = run_cli(capsys, "escrow", "export", "--format", "csv", "--output", str(target))
    assert code == 1 and "cannot write" in err and "Traceback" not in err
