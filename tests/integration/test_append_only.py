"""The database itself refuses to rewrite history: UPDATE, DELETE (and TRUNCATE on
PostgreSQL) of stored events fail in the database, whoever sends them.

The statements go through raw connections of the database's own driver, not through the
ledger, because the point is that nothing above the database is trusted to refrain.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

import psycopg
import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import CLIENT, delivered_order, open_gig, race

from ledger.bootstrap import build_ledger
from ledger.service import LedgerApp
from ledger.settings import Settings, load_settings


@dataclass(frozen=True)
class RawStore:
    """A raw connection to the ledger's database and the name of its events table."""

    run: Callable[[str], list[tuple[Any, ...]]]
    error: type[Exception]
    table: str
    is_postgres: bool

    def events(self) -> list[tuple[Any, ...]]:
        return self.run(f"SELECT * FROM {self.table} ORDER BY originator_id, originator_version")

    def triggers(self) -> int:
        """How many triggers guard the events table."""
        if self.is_postgres:
            where = f"tgrelid = '{self.table}'::regclass AND NOT tgisinternal"
            return int(self.run(f"SELECT count(*) FROM pg_trigger WHERE {where}")[0][0])
        where = f"type = 'trigger' AND tbl_name = '{self.table}'"
        return int(self.run(f"SELECT count(*) FROM sqlite_master WHERE {where}")[0][0])


@contextmanager
def raw_store(settings: Settings, app: LedgerApp) -> Iterator[RawStore]:
    """Autocommit connections, so a refused statement leaves no transaction (nor lock) open."""
    table = app.recorder.events_table_name
    if settings.is_postgres:
        with psycopg.connect(settings.database_url, autocommit=True) as pg:

            def run_pg(sql: str) -> list[tuple[Any, ...]]:
                cursor = pg.execute(sql)
                return cursor.fetchall() if cursor.description else []

            yield RawStore(run_pg, psycopg.Error, table, is_postgres=True)
        return
    with closing(sqlite3.connect(settings.sqlite_path, isolation_level=None)) as lite:

        def run_sqlite(sql: str) -> list[tuple[Any, ...]]:
            with closing(lite.execute(sql)) as cursor:
                return cursor.fetchall()

        yield RawStore(run_sqlite, sqlite3.Error, table, is_postgres=False)


def postgres_settings(postgres_url: str) -> Settings:
    """For the PostgreSQL-only tests (SQLite has no TRUNCATE, nor a DDL race to lose)."""
    return load_settings(LEDGER_DATABASE_URL=postgres_url, _env_file=None)


def with_history(app: LedgerApp) -> UUID:
    """Some stored events: a gig, and an order taken as far as delivery, with its payment."""
    return delivered_order(app, open_gig(app))


@pytest.fixture
def order_id(stored_app: LedgerApp) -> UUID:
    return with_history(stored_app)


@pytest.fixture
def raw(order_id: UUID, stored_app: LedgerApp, settings: Settings) -> Iterator[RawStore]:
    with raw_store(settings, stored_app) as store:
        yield store


def assert_refused(raw: RawStore, *statements: str) -> None:
    """Each statement fails in the database, and the events are as they were."""
    before = raw.events()
    assert before, "there must be stored events to protect"
    for statement in statements:
        with pytest.raises(raw.error, match="append-only"):
            raw.run(statement.format(table=raw.table))
        assert raw.events() == before, statement


def test_update_is_refused(raw: RawStore) -> None:
    assert_refused(
        raw,
        "UPDATE {table} SET topic = 'tampered'",
        "UPDATE {table} SET originator_version = originator_version + 100",
        "UPDATE {table} SET state = state WHERE originator_version = 1",
    )


def test_delete_is_refused(raw: RawStore) -> None:
    assert_refused(raw, "DELETE FROM {table} WHERE originator_version = 2", "DELETE FROM {table}")


@pytest.mark.postgres
def test_truncate_is_refused_on_postgres(postgres_url: str, clock: FakeClock) -> None:
    settings = postgres_settings(postgres_url)
    with open_app(settings, clock) as app, raw_store(settings, app) as store:
        with_history(app)
        assert_refused(store, "TRUNCATE {table}", "TRUNCATE {table} CASCADE")


def test_the_ledger_carries_on_after_refusals(
    raw: RawStore, stored_app: LedgerApp, order_id: UUID
) -> None:
    before = stored_app.get_order(CLIENT, order_id)
    assert_refused(raw, "DELETE FROM {table}", "UPDATE {table} SET topic = 'x'")
    after = stored_app.get_order(CLIENT, order_id)
    assert (after.version, after.stage) == (before.version, before.stage) == (4, "delivered")
    assert stored_app.complete_order(CLIENT, order_id).aggregate.status == "completed"


def test_installing_the_triggers_twice_is_harmless(
    raw: RawStore, stored_app: LedgerApp, settings: Settings, clock: FakeClock
) -> None:
    assert raw.triggers() == 2
    with open_app(settings, clock) as other:
        assert raw.triggers() == 2
        gig_id = open_gig(other)  # both apps still append, and read each other's events
        order_id = stored_app.place_order(CLIENT, gig_id, "basic").aggregate.id
        assert other.get_order(CLIENT, order_id).status == "pending"
    assert_refused(raw, "UPDATE {table} SET topic = 'tampered'", "DELETE FROM {table}")


@pytest.mark.postgres
def test_two_apps_opening_a_fresh_database_at_once_both_start(
    postgres_url: str, clock: FakeClock
) -> None:
    """An API and a worker starting together on an empty database (docker-compose does
    this): both must come up, and the events table must end up guarded, once."""
    settings = postgres_settings(postgres_url)
    opened = race(partial(build_ledger, settings, clock), partial(build_ledger, settings, clock))
    apps = [app for app in opened if isinstance(app, LedgerApp)]
    try:
        assert len(apps) == 2, [repr(outcome) for outcome in opened]
        with raw_store(settings, apps[0]) as store:
            with_history(apps[1])
            assert store.triggers() == 2
            assert_refused(store, "DELETE FROM {table}")
    finally:
        for app in apps:
            app.close()
