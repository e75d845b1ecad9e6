"""``ledger serve`` starts on the embedded defaults and on PostgreSQL, and answers."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest


def test_serves_on_the_embedded_defaults(serve, tmp_path: Path) -> None:
    server = serve()
    answer = httpx.get(f"{server.url}/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert (tmp_path / "var" / "ledger.db").is_file(), "the default SQLite store is var/ledger.db"


@pytest.mark.postgres
def test_serves_on_postgres_and_creates_the_protected_store(serve, postgres_url: str) -> None:
    server = serve(LEDGER_DATABASE_URL=postgres_url)
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    with psycopg.connect(postgres_url) as conn:
        triggers = {
            row[0]
            for row in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'ledger_events'::regclass"
            )
        }
    assert {"ledger_no_update_delete", "ledger_no_truncate"} <= triggers


def test_refuses_bad_configuration_naming_the_variable(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve"],
        env={"LEDGER_PLATFORM_FEE_PERCENT": "150", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LEDGER_PLATFORM_FEE_PERCENT" in result.stderr
