"""``ledger serve`` starts on the embedded defaults and on PostgreSQL, and answers."""

from __future__ import annotations

import subprocess
import sys
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


@pytest.mark.postgres
def test_several_api_processes_beside_a_worker_serve_one_ledger(
    serve, postgres_url: str, tmp_path: Path
) -> None:
    """``ledger serve --workers 2 --no-projections`` with ``ledger worker``: commands through
    either process land in one store, and each read-your-write is honoured."""
    variables = {"LEDGER_DATABASE_URL": postgres_url, "LEDGER_VAR_DIR": str(tmp_path / "var")}
    server = serve(options=("--workers", "2", "--no-projections"), **variables)
    env = {**server.env}
    worker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        token = subprocess.run(
            [sys.executable, "-m", "api.cli", "token", "--sub", "ana"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        client = subprocess.run(
            [sys.executable, "-m", "api.cli", "token", "--sub", "bob"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        with httpx.Client(base_url=server.url, timeout=10) as http:
            package = {"packageId": "basic", "price": 150, "deliveryDays": 3, "revisions": 1}
            gig = http.post(
                "/v1/gigs",
                json={"title": "Logo", "packages": [{**package, "description": "one"}]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert gig.status_code == 201, gig.text
            placed = []
            for _ in range(6):  # new connections: the kernel spreads them over both processes
                with httpx.Client(base_url=server.url, timeout=10) as fresh:
                    order = fresh.post(
                        "/v1/orders",
                        json={"gigId": gig.json()["id"], "packageId": "basic"},
                        headers={"Authorization": f"Bearer {client}"},
                    )
                assert order.status_code == 201, order.text
                placed.append(order)
            last = max(int(o.headers["x-ledger-position"]) for o in placed)
            listed = http.get(
                "/v1/orders",
                headers={"Authorization": f"Bearer {client}", "X-Ledger-Min-Position": str(last)},
            )
            assert listed.status_code == 200, listed.text
            assert {o["id"] for o in listed.json()["data"]} == {o.json()["id"] for o in placed}
    finally:
        worker.terminate()
        assert worker.wait(timeout=20) == 0


def test_several_api_processes_leave_the_projections_to_the_worker(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--workers", "2"],
        env={"PATH": "/usr/bin:/bin", "LEDGER_VAR_DIR": str(tmp_path / "var")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--no-projections" in result.stdout + result.stderr
