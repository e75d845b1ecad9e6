"""The events table: created once, under a lock, and append-only, enforced by the database.

The ``eventsourcing`` recorders create the events table; the subclasses here also install
triggers that make the database refuse any UPDATE or DELETE of a stored event (and TRUNCATE
on PostgreSQL), so not even a buggy migration or a hand-typed statement can rewrite history
quietly. Auditors rely on that; the hash chain (a later feature) proves it.

Beside the events each recorder keeps ``ledger_receipts`` (``ledger.receipts``): the outcome
of a command run under an ``Idempotency-Key``, written in the very transaction of its events
(``save(..., receipts=[...])``), so a retry can be answered from it after any crash. And
the same transaction refuses, as a lost race, commands that decided on an aggregate they
only read if that aggregate has a later event (``insert_events(..., reads={id: version})``,
``service.reads``).

On PostgreSQL an API and a worker often start together on an empty database
(docker-compose does exactly that). Two concurrent ``CREATE TYPE``/``CREATE TABLE IF NOT
EXISTS`` may both pass the existence check and one then fails on the catalogue's unique
index, so all schema set-up -- ours and the library's -- runs under one advisory lock,
``SCHEMA_LOCK``. SQLite serialises writers by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import get_topic, retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from ledger.receipts import RECEIPTS_TABLE, Outcome, ReceiptEntry

APPEND_ONLY_MESSAGE = "stored events are append-only"
SCHEMA_LOCK = 7_305_116_001
"""PostgreSQL advisory lock key held while any part of the schema is created."""


_RECEIPTS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {table} ("
    " caller_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,"
    " aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, position BIGINT NOT NULL,"
    " recorded_at TEXT NOT NULL, PRIMARY KEY (caller_id, key))",
    f"CREATE INDEX IF NOT EXISTS {RECEIPTS_TABLE}_by_age ON {{table}} (recorded_at)",
)
_RECEIPT_COLUMNS = "caller_id, key, request_hash, aggregate_id, version, position, recorded_at"
# A key comes back after its retention; the newer request's receipt replaces the old one.
_ON_KEY = (
    " ON CONFLICT (caller_id, key) DO UPDATE SET request_hash = excluded.request_hash,"
    " aggregate_id = excluded.aggregate_id, version = excluded.version,"
    " position = excluded.position, recorded_at = excluded.recorded_at"
)
_UPSERT_RECEIPT = (
    f"INSERT INTO {{table}} ({_RECEIPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)" + _ON_KEY
)
_SELECT_RECEIPT = f"SELECT {_RECEIPT_COLUMNS} FROM {{table}} WHERE caller_id = ? AND key = ?"
"""Statements on the receipts table, in SQLite's parameter style (``?``); ``{table}`` is
the table's name, qualified with the schema on PostgreSQL."""
_MOVED_ON = "an aggregate a command of this transaction read has a later event"


@runtime_checkable
class Receipts(Protocol):
    """A recorder that keeps receipts (both SQL recorders here; not the in-memory one)."""

    def receipt_of(self, caller_id: str, key: str) -> Outcome | None:
        """The receipt stored under the caller's key, if any."""


def _outcome(row: Sequence[Any]) -> Outcome:
    caller_id, key, request_hash, aggregate_id, version, position, recorded_at = row
    return Outcome(caller_id, key, request_hash, UUID(aggregate_id), version, position, recorded_at)


@runtime_checkable
class EventsOf(Protocol):
    """A recorder that reads given aggregates' events together with their positions (the
    library reads one aggregate's events without positions, or positions without ids)."""

    def events_of(self, ids: Sequence[UUID]) -> list[Notification]:
        """The stored events of the aggregates ``ids``, in log order, in one query on the
        primary key's index (its first column is the aggregate id)."""


@runtime_checkable
class EventsAt(Protocol):
    """A recorder that reads the events stored at given (aggregate id, version) keys, with
    their positions: what a command whose commit was not acknowledged compares with what it
    sent (``service.commit``)."""

    def events_at(self, keys: Sequence[tuple[UUID, int]], wait: bool = False) -> list[Notification]:
        """The stored events at ``keys`` (those the store holds), in log order. ``wait``:
        on PostgreSQL wait first for any insert transaction still open to end (committed
        or not), so that an event not found is not one whose COMMIT is on its way."""


def _at(keys: Iterable[tuple[UUID, int]], notes: Iterable[Notification]) -> list[Notification]:
    """Of ``notes`` (read by aggregate and by version), those at one of ``keys``."""
    wanted = set(keys)
    return [note for note in notes if (note.originator_id, note.originator_version) in wanted]


_tries = threading.local()


def insert_attempts() -> int:
    """How many times, in this thread, an insert transaction was started since the last
    ``insert_attempts`` (the library retries a failed insert): over one, an integrity error
    may be the retry meeting the rows of an attempt that committed unacknowledged."""
    count = getattr(_tries, "count", 0)
    _tries.count = 0
    return int(count)


def _attempt() -> None:
    _tries.count = getattr(_tries, "count", 0) + 1


_KEYS_PER_QUERY = 400
"""Keys read per statement (SQLite allows 32,766 parameters; a batch has a few hundred)."""


class AppendOnlySQLiteRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, whose events table refuses UPDATE and DELETE."""

    def events_of(self, ids: Sequence[UUID]) -> list[Notification]:
        marks = ", ".join("?" for _ in ids)
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state"
            f" FROM {self.events_table_name} WHERE originator_id IN ({marks}) ORDER BY rowid"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, [i.hex for i in ids])  # the library keeps UUIDs as hex
            return [
                _notification(row, row["rowid"], row["state"], self.convert_originator_id)
                for row in cursor.fetchall()
            ]

    def events_at(self, keys: Sequence[tuple[UUID, int]], wait: bool = False) -> list[Notification]:
        found: list[Notification] = []  # SQLite: a reader sees only what was committed
        with self.datastore.transaction(commit=False) as cursor:
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                ids = sorted({i.hex for i, _ in chunk})
                versions = sorted({v for _, v in chunk})
                statement = (
                    "SELECT rowid, originator_id, originator_version, topic, state"
                    f" FROM {self.events_table_name}"
                    f" WHERE originator_id IN ({', '.join('?' for _ in ids)})"
                    f" AND originator_version IN ({', '.join('?' for _ in versions)})"
                )
                cursor.execute(statement, [*ids, *versions])
                found.extend(
                    _notification(row, row["rowid"], row["state"], self.convert_originator_id)
                    for row in cursor.fetchall()
                )
        return sorted(_at(keys, found), key=lambda note: note.id)

    def receipt_of(self, caller_id: str, key: str) -> Outcome | None:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(_SELECT_RECEIPT.format(table=RECEIPTS_TABLE), (caller_id, key))
            row = cursor.fetchone()
        return None if row is None else _outcome(tuple(row))

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        _attempt()
        positions = super()._insert_events(c, stored_events, **kwargs)
        reads: Mapping[UUID, int] = kwargs.get("reads", {})
        for aggregate_id, version in reads.items():  # holding the write lock: the latest
            c.execute(
                f"SELECT 1 FROM {self.events_table_name}"
                " WHERE originator_id = ? AND originator_version > ? LIMIT 1",
                (aggregate_id.hex, version),
            )
            if c.fetchone() is not None:
                raise IntegrityError(_MOVED_ON)  # the transaction rolls back
        receipts: Sequence[ReceiptEntry] = kwargs.get("receipts", ())
        if receipts and positions:
            c.executemany(
                _UPSERT_RECEIPT.format(table=RECEIPTS_TABLE),
                [entry.row(positions) for entry in receipts],
            )
        return positions

    def create_table(self) -> None:
        super().create_table()
        table = self.events_table_name
        with self.datastore.transaction(commit=True) as cursor:
            for statement in _RECEIPTS_SCHEMA:
                cursor.execute(statement.format(table=RECEIPTS_TABLE))
            for operation in ("UPDATE", "DELETE"):
                cursor.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                    f"BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
                )


@contextmanager
def schema_lock(datastore: PostgresDatastore) -> Iterator[None]:
    """Hold ``SCHEMA_LOCK`` while the block creates schema: a session-level lock on a
    connection of its own, since the library creates its types and tables in several
    transactions of its own, which must all happen inside."""
    with datastore.get_connection() as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


class SchemaLockedSnapshotRecorder(PostgresAggregateRecorder):
    """The library's recorder of snapshots (``ledger_snapshots``), created under
    ``SCHEMA_LOCK`` as the events table is: two processes opening an empty database at once
    would otherwise both create its row type, and one would fail."""

    def create_table(self) -> None:
        with schema_lock(self.datastore):
            super().create_table()


class AppendOnlyPostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, created under ``SCHEMA_LOCK``, whose events table
    refuses UPDATE, DELETE and TRUNCATE."""

    def create_table(self) -> None:
        with schema_lock(self.datastore):
            super().create_table()
            self._install_triggers()

    def events_of(self, ids: Sequence[UUID]) -> list[Notification]:
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {schema}.{table} WHERE originator_id = ANY(%b) ORDER BY notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
        )
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, (list(ids),))
            return [
                _notification(row, row["notification_id"], bytes(row["state"])) for row in cursor
            ]

    @retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)
    def events_at(self, keys: Sequence[tuple[UUID, int]], wait: bool = False) -> list[Notification]:
        table = SQL("{schema}.{table}").format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
        )
        # SHARE conflicts with the EXCLUSIVE lock every insert transaction takes: an insert
        # whose COMMIT is still on its way is waited for (a bounded wait; past it the store
        # "cannot be read", and the command's outcome stays unknown).
        lock = SQL("LOCK TABLE {table} IN SHARE MODE").format(table=table)
        select = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {table} WHERE originator_id = ANY(%b) AND originator_version = ANY(%b)"
        ).format(table=table)
        ids = sorted({i for i, _ in keys})
        versions = sorted({v for _, v in keys})
        with self.datastore.transaction(commit=False) as cursor:
            if wait:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute(lock)
            cursor.execute(select, (ids, versions))
            found = [
                _notification(row, row["notification_id"], bytes(row["state"])) for row in cursor
            ]
        return sorted(_at(keys, found), key=lambda note: note.id)

    def receipt_of(self, caller_id: str, key: str) -> Outcome | None:
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._in_schema(_SELECT_RECEIPT), (caller_id, key))
            row = cursor.fetchone()
        return None if row is None else _outcome(tuple(row.values()))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """A whole insert transaction in one statement (``ledger_insert_events``): the lock,
        the events, the guarded reads (``reads``), the receipts (``receipts``), ``NOTIFY``.
        The library's own sends each of those as a statement of its own while the insert lock
        is held; here the lock is held for one round trip, and the process pays for one
        statement. Retried as the library's is, on the errors it retries."""
        _attempt()
        if not stored_events:
            return None
        events = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        reads: Mapping[UUID, int] = kwargs.get("reads", {})
        receipts: Sequence[ReceiptEntry] = kwargs.get("receipts", ())
        # A receipt names its command's last event by its index (from 1): its position is
        # known only inside the statement. One row per key, the last, as upserts one after
        # another would leave it.
        indexes = range(1, len(stored_events) + 1)
        rows = {row[:2]: row for row in (entry.row(indexes) for entry in receipts)}
        columns = [list(column) for column in zip(*rows.values(), strict=True)] or [[]] * 7
        with self.datastore.get_connection() as connection, connection.cursor() as curs:
            return self._record(
                curs, stored_events, [events, list(reads), [*reads.values()], *columns]
            )

    def _record(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], parameters: list[Any]
    ) -> list[int]:
        """Runs the insert statement (a seam for tests that make the server refuse it)."""
        curs.execute(self._insert_statement, parameters, prepare=True)
        row = curs.fetchone()
        assert row is not None
        return list(row["positions"])

    @cached_property
    def _insert_statement(self) -> Composed:
        """Built once: it is run for every insert transaction. Its arrays are sent in binary
        (``%b``): psycopg writes a text array in Python, hex-encoding each event's state and
        then escaping it again as an array element, about ten times the CPU (measured: 300
        against 30 µs for ten events of 700 bytes)."""
        return SQL(
            "SELECT {schema}.ledger_insert_events(%b::{schema}.{event}[], %b::uuid[], %b::int[],"
            " %b::text[], %b::text[], %b::text[], %b::text[], %b::int[], %b::int[], %b::text[])"
            " AS positions"
        ).format(
            schema=Identifier(self.datastore.schema),
            event=Identifier(self.stored_event_type_name),
        )

    @property
    def _insert_function(self) -> Composed:
        """``ledger_insert_events``. The guarded reads are checked after the insert, with
        the lock held (what they read is the latest); a lost race fails the statement as a
        unique violation does, and the library reports both as an ``IntegrityError``.

        Each read is looked up by the table's key, in a subquery of its own: written as a
        join of the reads with the table, the plan the writer's session cached while the log
        was short scanned the whole log in every transaction after."""
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        receipts = Identifier(self.datastore.schema or "public", RECEIPTS_TABLE)
        return SQL(
            "CREATE OR REPLACE FUNCTION {schema}.ledger_insert_events("
            "events {schema}.{event}[], read_ids uuid[], read_versions int[],"
            " callers text[], keys text[], hashes text[], aggregates text[], versions int[],"
            " lasts int[], recorded text[]) RETURNS bigint[] LANGUAGE plpgsql AS $$"
            " DECLARE positions bigint[];"
            " BEGIN"
            " SET LOCAL lock_timeout = '{timeout}s';"
            " LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
            " WITH inserted AS ("
            "  INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            "  SELECT originator_id, originator_version, topic, state FROM unnest(events)"
            "  RETURNING notification_id)"
            " SELECT array_agg(notification_id ORDER BY notification_id) INTO positions"
            " FROM inserted;"
            " IF EXISTS (SELECT 1 FROM unnest(read_ids, read_versions) AS r(id, v)"
            "  WHERE EXISTS (SELECT 1 FROM {schema}.{table} e"
            "  WHERE e.originator_id = r.id AND e.originator_version > r.v)) THEN"
            "  RAISE EXCEPTION {moved_on} USING ERRCODE = 'unique_violation';"
            " END IF;"
            " INSERT INTO {receipts} ({columns})"
            "  SELECT c, k, h, a, v, positions[l], t"
            "  FROM unnest(callers, keys, hashes, aggregates, versions, lasts, recorded)"
            "  AS r(c, k, h, a, v, l, t)" + _ON_KEY + ";"
            " NOTIFY {channel};"
            " RETURN positions;"
            " END $$"
        ).format(
            schema=schema,
            table=table,
            event=Identifier(self.stored_event_type_name),
            timeout=Literal(self.datastore.lock_timeout),
            moved_on=Literal(_MOVED_ON),
            receipts=receipts,
            columns=SQL(_RECEIPT_COLUMNS),
            channel=Identifier(self.channel_name),
        )

    def _in_schema(self, statement: str) -> Composed:
        """One of the receipts statements for PostgreSQL, on this store's schema."""
        table = Identifier(self.datastore.schema or "public", RECEIPTS_TABLE)
        return SQL(statement.replace("?", "%s")).format(table=table)

    def _install_triggers(self) -> None:
        schema = self.datastore.schema or "public"
        table = f'"{schema}"."{self.events_table_name}"'
        function = f'"{schema}"."ledger_refuse_change"'
        with self.datastore.transaction(commit=True) as cursor:
            for statement in _RECEIPTS_SCHEMA:
                cursor.execute(self._in_schema(statement))
            cursor.execute(self._insert_function)
            cursor.execute(
                f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE} (% refused)', TG_OP; END $$"
            )
            cursor.execute(
                f"CREATE OR REPLACE TRIGGER ledger_no_update_delete BEFORE UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
            cursor.execute(
                f"CREATE OR REPLACE TRIGGER ledger_no_truncate BEFORE TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )


def _notification(row: Any, position: int, state: bytes, convert: Any = None) -> Notification:
    originator_id = row["originator_id"]
    return Notification(
        id=position,
        originator_id=convert(originator_id) if convert else originator_id,
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=state,
    )


class LedgerPostgresFactory(PostgresFactory):
    """The library's PostgreSQL persistence, with the snapshots recorder that creates its
    table under ``SCHEMA_LOCK`` (the events recorder is named by ``RECORDER_TOPICS``)."""

    aggregate_recorder_class = SchemaLockedSnapshotRecorder


RECORDER_TOPICS = {
    "eventsourcing.sqlite": get_topic(AppendOnlySQLiteRecorder),
    "eventsourcing.postgres": get_topic(AppendOnlyPostgresRecorder),
}
"""``APPLICATION_RECORDER_TOPIC`` for each SQL persistence module (others, such as the
in-memory store of unit tests, have nothing to protect)."""
FACTORY_TOPICS = {"eventsourcing.postgres": get_topic(LedgerPostgresFactory)}
"""The ``PERSISTENCE_MODULE`` the ledger uses in place of the library's module named."""
