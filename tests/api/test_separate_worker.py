"""``ledger serve --no-projections`` beside ``ledger worker``: the API applies nothing, yet
``X-Ledger-Min-Position`` still waits for (and sees) what the worker applied."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from ledger.settings import Settings, load_settings
from projections.registry import build_runner
from tests.conftest import FakeClock, open_app


@pytest.mark.postgres
def test_the_api_follows_the_positions_a_worker_reaches(
    postgres_url: str, tmp_path, clock: FakeClock
) -> None:
    settings: Settings = load_settings(
        LEDGER_DATABASE_URL=postgres_url, LEDGER_VAR_DIR=str(tmp_path / "var"), _env_file=None
    )
    app = create_app(settings, run_projections=False, clock=clock)
    with TestClient(app) as client, open_app(settings, clock) as worker_app:
        token = app.state.auth.issue("freelancer-1")
        package = {"packageId": "basic", "price": 100, "deliveryDays": 3, "revisions": 1,
                   "description": "d"}  # fmt: skip
        created = client.post(
            "/v1/gigs",
            json={"title": "Logo", "packages": [package]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        position = created.headers["X-Ledger-Position"]
        assert app.state.runner.leading() == set(), "the API process applies nothing"
        worker = build_runner(worker_app)
        try:
            assert worker.run_once() > 0  # the worker applies; the API process never does
        finally:
            worker.stop()
        read = client.get(
            f"/v1/gigs/{created.json()['id']}",
            headers={"Authorization": f"Bearer {token}", "X-Ledger-Min-Position": position},
        )
        assert read.status_code == 200, read.text
        assert read.json()["title"] == "Logo"
