"""The database closes every connection of the service (``pg_terminate_backend``, as a
restart or a failover would) between requests and in the middle of a run of keyed POSTs: no
answer is a 500 or a dropped connection, a 503 says ``Retry-After`` and means nothing was
recorded, and after the retries every key has exactly one order (PostgreSQL: SQLite has no
connections to lose)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from ledger.settings import load_settings
from tests.api.conftest import Api
from tests.conftest import FakeClock

pytestmark = pytest.mark.postgres


@pytest.fixture
def on_postgres(postgres_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Api]:
    settings = load_settings(
        LEDGER_DATABASE_URL=postgres_url, LEDGER_VAR_DIR=str(tmp_path), _env_file=None
    )
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        yield Api(client, app)


def terminate_connections(url: str) -> int:
    """Close every session of the service's database; how many there were."""
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def place(api: Api, gig: dict[str, Any], key: str) -> httpx.Response:
    return api.client.post(
        "/v1/orders",
        json={"gigId": gig["id"], "packageId": "basic"},
        headers={**api.as_("client-1"), "Idempotency-Key": key},
    )


def test_keyed_posts_after_the_connections_were_closed(on_postgres: Api, postgres_url: str) -> None:
    api = on_postgres
    gig = api.gig()
    first = [place(api, gig, f"before-{n}") for n in range(5)]
    assert all(answer.status_code == 201 for answer in first)
    assert terminate_connections(postgres_url) > 0
    answers: dict[str, httpx.Response] = {}
    for n in range(40):
        answers[f"after-{n}"] = place(api, gig, f"after-{n}")
        if n % 10 == 9:
            terminate_connections(postgres_url)  # again, mid-run
    statuses = [answer.status_code for answer in answers.values()]
    print(f"45 keyed POSTs, 5 resets: {statuses.count(503)} answered 503, none 500")
    assert 500 not in statuses, statuses
    assert set(statuses) <= {201, 503}, statuses
    for key, answer in answers.items():
        if answer.status_code == 503:
            assert answer.headers["Retry-After"] and answer.json()["code"] == "not_ready"
            retried = place(api, gig, key)
            assert retried.status_code == 201, retried.text
            answers[key] = retried
    orders = {answer.json()["id"] for answer in answers.values()}
    assert len(orders) == 40
    again = {place(api, gig, key).json()["id"] for key in answers}
    assert again == orders, "a retried key answers its first order"
    head = api.app.state.ledger.recorder.max_notification_id()
    listed = api.read("/v1/orders?limit=100", "client-1", position=head)["data"]
    assert len(listed) == 45, "one order per key, none lost, none doubled"
