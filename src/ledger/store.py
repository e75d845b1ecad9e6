"""The events table: created once, under a lock, and append-only, enforced by the database.

The ``eventsourcing`` recorders create the events table; the subclasses here also install
triggers that make the database refuse any UPDATE or DELETE of a stored event (and TRUNCATE
on PostgreSQL), so not even a buggy migration or a hand-typed statement can rewrite history
quietly. Auditors rely on that; the hash chain (a later feature) proves it.

On PostgreSQL an API and a worker often start together on an empty database
(docker-compose does exactly that). Two concurrent ``CREATE TYPE``/``CREATE TABLE IF NOT
EXISTS`` may both pass the existence check and one then fails on the catalogue's unique
index, so all schema set-up -- ours and the library's -- runs under one advisory lock,
``SCHEMA_LOCK``. SQLite serialises writers by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

APPEND_ONLY_MESSAGE = "stored events are append-only"
SCHEMA_LOCK = 7_305_116_001
"""PostgreSQL advisory lock key held while any part of the schema is created."""


@runtime_checkable
class EventsOf(Protocol):
    """A recorder that reads given aggregates' events together with their positions (the
    library reads one aggregate's events without positions, or positions without ids)."""

    def events_of(self, ids: Sequence[UUID]) -> list[Notification]:
        """The stored events of the aggregates ``ids``, in log order, in one query on the
        primary key's index (its first column is the aggregate id)."""


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

    def create_table(self) -> None:
        super().create_table()
        table = self.events_table_name
        with self.datastore.transaction(commit=True) as cursor:
            for operation in ("UPDATE", "DELETE"):
                cursor.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                    f"BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
                )


class AppendOnlyPostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, created under ``SCHEMA_LOCK``, whose events table
    refuses UPDATE, DELETE and TRUNCATE."""

    def create_table(self) -> None:
        # A session-level lock on a connection of its own: the library creates its types
        # and tables in several transactions of its own, which must all happen inside.
        with self.datastore.get_connection() as lock:
            lock.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                super().create_table()
                self._install_triggers()
            finally:
                lock.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    def events_of(self, ids: Sequence[UUID]) -> list[Notification]:
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {schema}.{table} WHERE originator_id = ANY(%s) ORDER BY notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
        )
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, (list(ids),))
            return [
                _notification(row, row["notification_id"], bytes(row["state"])) for row in cursor
            ]

    def _install_triggers(self) -> None:
        schema = self.datastore.schema or "public"
        table = f'"{schema}"."{self.events_table_name}"'
        function = f'"{schema}"."ledger_refuse_change"'
        with self.datastore.transaction(commit=True) as cursor:
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


RECORDER_TOPICS = {
    "eventsourcing.sqlite": get_topic(AppendOnlySQLiteRecorder),
    "eventsourcing.postgres": get_topic(AppendOnlyPostgresRecorder),
}
"""``APPLICATION_RECORDER_TOPIC`` for each SQL persistence module (others, such as the
in-memory store of unit tests, have nothing to protect)."""
