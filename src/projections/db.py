"""Our own SQL on whichever store the ledger uses: one dialect, two drivers.

Read models live in the same database as the events. Statements are written once, with
named parameters (``:name``) and SQL that SQLite and PostgreSQL both speak (``ON CONFLICT``
upserts, ``RETURNING``); for psycopg the parameters are rewritten to ``%(name)s``. Connections
come from the ``eventsourcing`` datastore, so one pool (and, on SQLite, one writer lock)
serves both the events and the read models.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from eventsourcing.persistence import ApplicationRecorder, InterfaceError, OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.rows import tuple_row

from ledger.store import SCHEMA_LOCK

log = logging.getLogger("projections.db")
T = TypeVar("T")
Row = dict[str, Any]
Params = Mapping[str, Any]
_NAMED = re.compile(r"(?<![:\w]):(\w+)(?=(::\w+\[\])?)")
_PARAMETER = re.compile(r":\w+")
_INSERT = re.compile(
    r"\s*INSERT INTO (?P<table>\w+) \((?P<columns>[^)]*)\)\s*"
    r"VALUES \((?P<values>[^)]*)\)(?P<tail>.*)",
    re.IGNORECASE | re.DOTALL,
)


@lru_cache(maxsize=512)
def _for_psycopg(sql: str) -> str:
    """``:name`` → ``%(name)s``; an array (``:name::text[]``) → ``%(name)b``, sent in binary:
    psycopg writes a text array in Python, quoting and escaping every element, about ten
    times the CPU of the binary one (measured for a batch of answers or events)."""
    return _NAMED.sub(
        lambda named: f"%({named[1]})" + ("b" if named[2] else "s"), sql.replace("%", "%%")
    )


class Txn:
    """One open transaction: run statements, fetch rows as plain dicts."""

    def __init__(self, cursor: Any, db: Database) -> None:
        # The library wraps sqlite3's cursor; we need the real one for ``rowcount``.
        self._postgres = db.postgres
        self._cursor = cursor if db.postgres else cursor.sqlite_cursor
        self._db = db

    @property
    def postgres(self) -> bool:
        return self._postgres

    def _sql(self, sql: str) -> str:
        return _for_psycopg(sql) if self._postgres else sql

    def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; returns the number of rows it changed."""
        self._cursor.execute(self._sql(sql), params or {})
        return int(self._cursor.rowcount)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for many rows.

        On PostgreSQL a plain ``INSERT … VALUES (:a, :b …)`` becomes one ``COPY … FROM
        STDIN`` (half the cost of the next way, measured), and one with a tail (``ON
        CONFLICT …``) is sent once for all rows as ``INSERT … SELECT * FROM
        unnest(array_a, array_b …)``: one round trip and one statement either way, which is
        what rebuilds need. sqlite3's own ``executemany`` is already a tight C loop.
        """
        if not rows:
            return
        match = _INSERT.match(sql) if self._postgres else None
        values = [v.strip() for v in match["values"].split(",")] if match else []
        if match is None or not all(_PARAMETER.fullmatch(value) for value in values):
            self._cursor.executemany(self._sql(sql), rows)
            return
        columns = [c.strip() for c in match["columns"].split(",")]
        names = [value.removeprefix(":") for value in values]
        if not match["tail"].strip():
            with self._cursor.copy(
                f"COPY {match['table']} ({match['columns']}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row([row[name] for name in names])
            return
        types = self._db.column_types(match["table"])
        arrays = ", ".join(f"%b::{types[column]}[]" for column in columns)
        statement = (
            f"INSERT INTO {match['table']} ({match['columns']}) "
            f"SELECT * FROM unnest({arrays}){match['tail']}"
        )
        self._cursor.execute(statement, [[row[name] for row in rows] for name in names])

    def all(self, sql: str, params: Params | None = None) -> list[Row]:
        self._cursor.execute(self._sql(sql), params or {})
        return [dict(row) for row in self._cursor.fetchall()]

    def tuples(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Rows as plain tuples: for passes over the whole log, where building a dict per
        row costs more than the hashing done with it (measured)."""
        if not self._postgres:
            self._cursor.execute(sql, params or {})
            return [tuple(row) for row in self._cursor.fetchall()]
        factory = self._cursor.row_factory
        self._cursor.row_factory = tuple_row
        try:
            # Binary results: bytea arrives as it is stored, not as hex text to parse.
            self._cursor.execute(self._sql(sql), params or {}, binary=True)
            return list(self._cursor.fetchall())
        finally:
            self._cursor.row_factory = factory

    def rows_in(self, select: str, column: str, ids: Sequence[str]) -> Iterator[Row]:
        """The rows of ``select`` (``SELECT … FROM table``) whose ``column`` is one of
        ``ids``: on PostgreSQL in one query, the ids in one array parameter; on SQLite in
        one query per 500 ids (older builds take at most 999 parameters)."""
        if ids and self._postgres:
            yield from self.all(f"{select} WHERE {column} = ANY(:ids::text[])", {"ids": ids})
            return
        for start in range(0, len(ids), 500):
            names = {f"id{i}": value for i, value in enumerate(ids[start : start + 500])}
            marks = ", ".join(":" + name for name in names)
            yield from self.all(f"{select} WHERE {column} IN ({marks})", names)

    def lock_schema(self) -> None:
        """Hold ``ledger.store.SCHEMA_LOCK`` until this transaction ends, before creating
        tables: concurrent ``CREATE TABLE IF NOT EXISTS`` can fail on PostgreSQL. (SQLite
        serialises writers already.)"""
        if self._postgres:
            self._cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))

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
        self._column_types: dict[str, dict[str, str]] = {}

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Txn]:
        """A transaction, committed on success and rolled back on any error."""
        with self.datastore.transaction(commit=write) as cursor:
            yield Txn(cursor, self)

    @contextmanager
    def _alone(self, *, write: bool) -> Iterator[Txn]:
        """For a single statement, which is atomic by itself: on PostgreSQL the pool's
        connections are in autocommit mode, so it is one round trip, not BEGIN, the
        statement and COMMIT (a third of the client's CPU for a one-row insert, measured).
        SQLite takes the usual transaction (its writer lock is the library's)."""
        if not isinstance(self.datastore, PostgresDatastore):
            with self.transaction(write=write) as txn:
                yield txn
            return
        with self.datastore.cursor() as cursor:
            yield Txn(cursor, self)

    def statement(self, sql: str, params: Params | None = None) -> int:
        """Run one statement as its own transaction; returns the number of rows it changed.

        Only for statements that may run twice with the effect of once (an insert that does
        nothing on conflict, an update by key): on PostgreSQL a failed connection is retried
        once (``_once_more``), and the first attempt may have committed.
        """

        def run() -> int:
            with self._alone(write=True) as txn:
                return txn.execute(sql, params)

        return self._once_more(run)

    def returning(self, sql: str, params: Params | None = None) -> list[Row]:
        """Run one writing statement as its own transaction, as ``statement`` does (and
        with its proviso); returns the rows of its ``RETURNING`` clause."""

        def run() -> list[Row]:
            with self._alone(write=True) as txn:
                return txn.all(sql, params)

        return self._once_more(run)

    def read(self, sql: str, params: Params | None = None) -> list[Row]:
        def run() -> list[Row]:
            with self._alone(write=False) as txn:
                return txn.all(sql, params)

        return self._once_more(run)

    def _once_more(self, run: Callable[[], T]) -> T:
        """On PostgreSQL, a statement whose connection the database closed (a restart, a
        failover, ``pg_terminate_backend``) is tried once more, after the pool has checked
        its idle connections and replaced the dead ones (they all died together). A second
        failure is the database's own, and the caller's to answer (503). SQLite's failures
        are a lock not granted in its own wait: trying again would only wait again."""
        try:
            return run()
        except (OperationalError, InterfaceError):
            if not isinstance(self.datastore, PostgresDatastore):
                raise
            log.warning("a database connection failed; checking the pool and trying once more")
            self.datastore.pool.check()
            return run()

    def column_types(self, table: str) -> dict[str, str]:
        """PostgreSQL's type of each column of ``table`` (cached: tables do not change
        shape while the process runs, and a rebuild recreates them identically)."""
        if table not in self._column_types:
            rows = self.read(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = :table AND table_schema = current_schema()",
                {"table": table},
            )
            self._column_types[table] = {row["column_name"]: row["data_type"] for row in rows}
        return self._column_types[table]
