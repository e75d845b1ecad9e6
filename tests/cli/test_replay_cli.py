"""``ledger replay --as-of TIME``, run in-process by ``main`` on a temporary SQLite store.

The story (default fee 20 %), on the fake clock from 09:00 UTC:

- 09:05 order A (400 MAD) placed, paid and accepted;
- 09:10 order B (150) placed, its payment opened and not yet paid;
- 10:00 A delivered and completed (fee 80, net 320); B paid, then cancelled by support and
  refunded; order C (200) placed.

At 09:30 A is processing and B pending; the books hold A's 400 in escrow.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from api.cli import main
from api.cli.replay import replay
from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, Package
from ledger.settings import Settings
from tests.cli.conftest import run_cli
from tests.conftest import FakeClock, open_app

FL, CL = Caller("freelancer-1"), Caller("client-1")
SUPPORT = Caller("support-1", frozenset({"support"}))
GATEWAY = Caller.system("gateway")
AT_0930 = {
    "Orders by status": {
        "pending": ["1", "150.00"],
        "processing": ["1", "400.00"],
        "completed": ["0", "0.00"],
        "cancelled": ["0", "0.00"],
        "total": ["2", "550.00"],
    },
    "Payments by status": {
        "pending": ["1", "150.00", "0.00"],
        "success": ["1", "400.00", "0.00"],
        "failed": ["0", "0.00", "0.00"],
        "total": ["2", "550.00", "0.00"],
    },
    "Trial balance (MAD)": {
        "assets:gateway": ["400.00", "0.00", "400.00"],
        "liabilities:escrow": ["0.00", "400.00", "400.00"],
        "total": ["400.00", "400.00", ""],
    },
}
AT_1100 = {
    "Orders by status": {
        "pending": ["1", "200.00"],
        "processing": ["0", "0.00"],
        "completed": ["1", "400.00"],
        "cancelled": ["1", "150.00"],
        "total": ["3", "750.00"],
    },
    "Payments by status": {
        "pending": ["0", "0.00", "0.00"],
        "success": ["2", "550.00", "150.00"],
        "failed": ["0", "0.00", "0.00"],
        "total": ["2", "550.00", "150.00"],
    },
    "Trial balance (MAD)": {
        "assets:gateway": ["550.00", "150.00", "400.00"],
        "liabilities:escrow": ["550.00", "550.00", "0.00"],
        "liabilities:freelancer:freelancer-1": ["0.00", "320.00", "320.00"],
        "revenue:fees": ["0.00", "80.00", "80.00"],
        "total": ["1,100.00", "1,100.00", ""],
    },
}


@pytest.fixture
def settings(cli_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The temporary database of the replay in a folder of the test's own."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    return cli_settings


@pytest.fixture
def story(settings: Settings, clock: FakeClock) -> dict[str, int]:
    """The story above, written to the store; the head of the log at 09:30 and at the end."""
    with open_app(settings, clock) as ledger:
        packages = [Package("basic", 40_000, 3, 1, "A"), Package("standard", 15_000, 3, 1, "B"),
                    Package("premium", 20_000, 3, 1, "C")]  # fmt: skip
        gig = ledger.create_gig(FL, "Logo", packages).aggregate.id
        clock.now = datetime(2026, 1, 5, 9, 5, tzinfo=UTC)
        a = ledger.place_order(CL, gig, "basic").aggregate.id
        ledger.create_payment(CL, a, "credit_card")
        ledger.confirm_payment(GATEWAY, payment_id_for(a), "tx-a", 40_000, "MAD")
        ledger.accept_order(FL, a)
        clock.now = datetime(2026, 1, 5, 9, 10, tzinfo=UTC)
        b = ledger.place_order(CL, gig, "standard").aggregate.id
        at_0930 = ledger.create_payment(CL, b, "credit_card").position
        clock.now = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
        ledger.deliver_order(FL, a, "here")
        ledger.complete_order(CL, a)
        ledger.confirm_payment(GATEWAY, payment_id_for(b), "tx-b", 15_000, "MAD")
        ledger.cancel_order(SUPPORT, b, CancelReason.POLICY_VIOLATION, "spam")
        end = ledger.place_order(CL, gig, "premium").position
    return {"09:30": at_0930, "end": end}


def tables(out: str) -> dict[str, dict[str, list[str]]]:
    """Each printed table by its title: first cell → the other cells."""
    found: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.strip() in AT_0930:
            current = found.setdefault(line.strip(), {})
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] not in ("status", "account"):
            current[cells[0]] = cells[1:]
    return found


def test_the_read_models_as_they_were_at_a_past_time(
    story: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "replay", "--as-of", "2026-01-05T09:30:00Z")
    assert code == 0, out + err
    assert tables(out) == AT_0930
    assert "As of 2026-01-05T09:30:00+00:00" in out
    assert "balanced: total debits equal total credits, in every entry" in out
    head, end = story["09:30"], story["end"]
    assert f"{head} events up to position {head} replayed in " in out
    assert f"{end - head} later events left out (the log's head was {end})" in out
    assert "Traceback" not in err


def test_a_time_with_an_offset_is_the_same_moment(
    story: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "replay", "--as-of", "2026-01-05T10:30:00+01:00")
    assert (code, tables(out)) == (0, AT_0930)


def test_a_time_after_the_last_event_gives_the_read_models_of_now(
    story: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "replay", "--as-of", "2026-01-05T11:00:00Z")
    assert (code, tables(out)) == (0, AT_1100)
    assert f"up to position {story['end']} replayed" in out and "left out" not in out
    assert run_cli(capsys, "escrow", "trial-balance")[1].count("1,100.00") == 2, "as the books say"


def test_before_the_first_event_the_tables_are_empty(
    story: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "replay", "--as-of", "2025-12-31T23:59:59Z")
    printed = tables(out)
    assert code == 0
    assert printed["Orders by status"]["total"] == ["0", "0.00"]
    assert printed["Trial balance (MAD)"] == {"total": ["0.00", "0.00", ""]}
    assert "0 events up to position 0 replayed" in out


def test_the_temporary_database_is_deleted_and_the_store_left_alone(
    story: dict[str, int], settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = settings.sqlite_path.read_bytes()
    assert run_cli(capsys, "replay", "--as-of", "2026-01-05T09:30:00Z")[0] == 0
    assert list((tmp_path / "tmp").iterdir()) == []
    assert settings.sqlite_path.read_bytes() == before


@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 1, 5, 9, 30, tzinfo=UTC), datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)],
    ids=["later-events-left-out", "nothing-kept"],
)
def test_every_phase_of_the_progress_bar_ends_full(
    story: dict[str, int], settings: Settings, moment: datetime
) -> None:
    """Not a terminal, so rich prints each bar once, in its final state: both phases at the
    head of the log, even when the last events were left out or none was kept."""
    err = StringIO()
    out = Console(file=StringIO(), width=80)
    assert replay(settings, moment, out, Console(file=err, force_terminal=False, width=80)) == 0
    end = story["end"]
    lines = err.getvalue().splitlines()
    bars = {re.split("[━╸╺]", line)[0].strip(): line.split()[-2] for line in lines}
    assert bars == {"copying events": f"{end}/{end}", "applying projections": f"{end}/{end}"}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2026-01-05T09:30:00", "has no timezone"),
        ("2026-01-05", "has no timezone"),
        ("yesterday", "is not an ISO 8601 time"),
        ("2026-13-05T09:30:00Z", "is not an ISO 8601 time"),
    ],
)
def test_a_time_without_a_zone_or_not_a_time_exits_2(
    settings: Settings, capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["replay", "--as-of", value])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "usage: ledger replay" in err and says in err


def test_the_time_is_required(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["replay"])
    assert stopped.value.code == 2
    assert "--as-of" in capsys.readouterr().err
