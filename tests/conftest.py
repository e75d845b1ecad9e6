"""Fixtures shared by every test: a controllable clock, and the event-store backends.

``backend`` runs a test once on SQLite (a file in the test's tmp dir) and once on PostgreSQL
(a database created for that test and dropped after it). Where PostgreSQL cannot be
reached the PostgreSQL run is skipped with the reason, except on CI (``CI=true``), where it
fails: a green CI run always includes PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ledger.bootstrap import build_ledger
from ledger.clock import Clock
from ledger.service import LedgerApp
from ledger.settings import Settings, load_settings

ADMIN_URL = os.environ.get(
    "LEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A clock that moves only when a test says so."""

    now: datetime = START
    calls: int = field(default=0)

    def __call__(self) -> datetime:
        self.calls += 1
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _postgres_or_skip() -> None:
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        message = f"PostgreSQL is not reachable at {ADMIN_URL}: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (on CI PostgreSQL is required)")
        pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (its URL), dropped afterwards."""
    _postgres_or_skip()
    name = f"ledger_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        LEDGER_DATABASE_URL=database_url, LEDGER_VAR_DIR=str(tmp_path / "var"), _env_file=None
    )


@pytest.fixture
def stored_app(settings: Settings, clock: FakeClock) -> Iterator[LedgerApp]:
    """A ``LedgerApp`` on a real store (SQLite, then PostgreSQL), with the fake clock."""
    with open_app(settings, clock) as app:
        yield app


@contextmanager
def open_app(settings: Settings, clock: Clock) -> Iterator[LedgerApp]:
    """A ``LedgerApp`` on the settings' database, opened (and closed) as another process would."""
    app = build_ledger(settings, clock)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def memory_app(clock: FakeClock) -> LedgerApp:
    """A ``LedgerApp`` on the library's in-memory store: for unit tests, no I/O."""
    return LedgerApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
