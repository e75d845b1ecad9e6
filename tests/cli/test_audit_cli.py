"""``ledger audit`` on the command line: the digest, verification against it, a tampered store
seen as such, and the export of the log."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from api.cli import main
from ledger.settings import Settings
from tests.cli.conftest import run_cli
from tests.conftest import START, FakeClock, open_app
from tests.integration.helpers import delivered_order, open_gig
from tests.integration.test_append_only import raw_store
from tests.integration.test_audit_chain import tamper


@pytest.fixture
def history_store(cli_settings: Settings) -> Settings:
    """Two delivered orders a day apart in the CLI's store."""
    settings = cli_settings
    clock = FakeClock()
    with open_app(settings, clock) as ledger:
        delivered_order(ledger, open_gig(ledger))
        clock.advance(days=1)
        delivered_order(ledger, open_gig(ledger))
    return settings


def test_digest_then_verify_then_tamper(
    history_store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, digest, _ = run_cli(capsys, "audit", "digest")
    position, hash_ = digest.strip().split(":")
    assert code == 0 and int(position) > 0 and len(hash_) == 64
    assert run_cli(capsys, "audit", "verify")[0] == 0
    assert run_cli(capsys, "audit", "verify", "--digest", digest.strip())[0] == 0
    with open_app(history_store, FakeClock()) as ledger, raw_store(history_store, ledger) as raw:
        tamper(raw, "UPDATE {table} SET topic = topic || '!' WHERE {id} = 3")
    code, _, err = run_cli(capsys, "audit", "verify")
    assert code == 1 and "position 3" in err
    assert run_cli(capsys, "audit", "verify", "--digest", digest.strip())[0] == 1


def test_a_malformed_digest_is_refused(
    history_store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "verify", "--digest", "12:nothex"])
    assert exit_.value.code == 2


def test_export_streams_every_event_up_to_a_time(
    history_store: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(capsys, "audit", "export", "--format", "ndjson")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and f"exported {len(records)} events" in err
    assert [r["position"] for r in records] == list(range(1, len(records) + 1))
    until = (START + timedelta(hours=1)).isoformat()
    target = tmp_path / "events.csv"
    code, _, _ = run_cli(capsys, "audit", "export", "--format", "csv", "--until", until,
                     "--output", str(target))  # fmt: skip
    lines = target.read_text().splitlines()
    assert code == 0 and lines[0] == "position,stream,version,type,at,data"
    assert 1 < len(lines) - 1 < len(records), "only the first day's events"
    with pytest.raises(SystemExit):
        main(["audit", "export", "--format", "csv", "--until", "2026-01-05T10:00"])
