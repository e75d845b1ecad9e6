"""``ledger projections rebuild``: what it says it did, and a rebuild killed half way then run
again giving read models identical to a clean rebuild's."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from ledger.settings import Settings
from tests.cli.conftest import run_cli
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import delivered_order, open_gig


@pytest.fixture
def history(cli_settings: Settings) -> Settings:
    """Three delivered orders (each: a gig, its order, payment, acceptance, delivery)."""
    with open_app(cli_settings, FakeClock()) as ledger:
        for _ in range(3):
            delivered_order(ledger, open_gig(ledger))
    return cli_settings


def events_in(settings: Settings) -> int:
    with closing(sqlite3.connect(settings.sqlite_path)) as db:
        return int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])


def test_the_rebuild_says_events_read_and_applications_apart(
    history: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "projections", "rebuild")
    events = events_in(history)
    assert code == 0
    said = " ".join(err.split())
    assert f"{events:,} events read" in said, said
    applications = int(said.split(" applications")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert applications > events, "the audit chain alone reads every event"


def dump(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    """Every read-model table's rows, in a stable order (the store's own tables aside)."""
    with closing(sqlite3.connect(settings.sqlite_path)) as db:
        tables = [
            name
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name not in {"stored_events", "snapshots", "projection_tracking", "ledger_receipts"}
            and not name.startswith("sqlite_")
        ]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def test_a_rebuild_killed_half_way_then_run_again_equals_a_clean_one(
    history: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run_cli(capsys, "projections", "rebuild")[0] == 0
    clean = dump(history)
    # A rebuild in its own process, killed (SIGKILL) once it has committed a batch or more:
    # batches of one event, so the kill lands between two batches' transactions.
    script = (
        "import sys; from api.cli.common import console;"
        "from ledger.bootstrap import build_ledger; from ledger.settings import load_settings;"
        "from projections.registry import build_runner;"
        "ledger = build_ledger(load_settings()); runner = build_runner(ledger);"
        "runner.rebuild(sorted(runner.projections), lambda done, head:"
        " (print(done, flush=True), done >= 5 and input()), batch_size=1)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as killed:
        assert killed.stdout is not None
        for line in killed.stdout:  # it waits on stdin once five events are in: kill it there
            if int(line) >= 5:
                killed.send_signal(signal.SIGKILL)
                break
        killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    half = dump(history)
    assert half != clean, "the killed rebuild left tables half built"
    assert run_cli(capsys, "projections", "rebuild")[0] == 0
    assert dump(history) == clean
