"""Our own SQL on whichever store the ledger uses: one dialect, two drivers.

Read models live in the same database as the events. Statements are written once, with
named parameters (``:name``) and SQL that SQLite and PostgreSQL both speak (``ON CONFLICT``
upserts, ``RETURNING``); for psycopg the parameters are rewritten to ``%(name)s``. Connections
come from the ``eventsourcing`` datastore, so one pool (and, on SQLite, one writer lock)
serves both the events and the read models.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

Row = dict[str, Any]
Params = Mapping[str, Any]
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=512)
def _for_psycopg(sql: str) -> str:
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


class Txn:
    """One open transaction: run statements, fetch rows as plain dicts."""

    def __init__(self, cursor: Any, postgres: bool) -> None:
        # The library wraps sqlite3's cursor; we need the real one for ``rowcount``.
        self._cursor = cursor if postgres else cursor.sqlite_cursor
        self._postgres = postgres

    def _sql(self, sql: str) -> str:
        return _for_psycopg(sql) if self._postgres else sql

    def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; returns the number of rows it changed."""
        self._cursor.execute(self._sql(sql), params or {})
        return int(self._cursor.rowcount)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def all(self, sql: str, params: Params | None = None) -> list[Row]:
        self._cursor.execute(self._sql(sql), params or {})
        return [dict(row) for row in self._cursor.fetchall()]

    def one(self, sql: str, params: Params | None = None) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None


class Database:
    """The read side's access to the store the ``LedgerApp`` writes to."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        if isinstance(recorder, PostgresApplicationRecorder):
            self.postgres = True
        elif isinstance(recorder, SQLiteApplicationRecorder):
            self.postgres = False
        else:
            raise TypeError("read models need a SQL store (SQLite or PostgreSQL)")
        self.recorder = recorder
        self.datastore = recorder.datastore

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Txn]:
        """A transaction, committed on success and rolled back on any error."""
        with self.datastore.transaction(commit=write) as cursor:
            yield Txn(cursor, self.postgres)

    def read(self, sql: str, params: Params | None = None) -> list[Row]:
        with self.transaction(write=False) as txn:
            return txn.all(sql, params)
