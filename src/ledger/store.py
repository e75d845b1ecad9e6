"""Append-only, enforced by the database itself.

The ``eventsourcing`` recorders create the events table; this module adds triggers that make
the database refuse any UPDATE or DELETE of a stored event (and TRUNCATE on PostgreSQL), so
not even a buggy migration or a hand-typed statement can rewrite history quietly. Auditors
rely on that; the hash chain (a later feature) proves it.
"""

from __future__ import annotations

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

APPEND_ONLY_MESSAGE = "stored events are append-only"
_SCHEMA_LOCK = 7_305_116_001
"""Advisory lock key taken while installing triggers, so that an API and a worker starting
at the same moment do not race on the same DDL."""


def make_append_only(recorder: ApplicationRecorder) -> None:
    """Install the append-only triggers on the recorder's events table (idempotent).

    Stores without SQL (the in-memory store of unit tests) have nothing to protect.
    """
    if isinstance(recorder, PostgresApplicationRecorder):
        _protect_postgres(recorder)
    elif isinstance(recorder, SQLiteApplicationRecorder):
        _protect_sqlite(recorder)


def _protect_sqlite(recorder: SQLiteApplicationRecorder) -> None:
    table = recorder.events_table_name
    with recorder.datastore.transaction(commit=True) as cursor:
        for operation in ("UPDATE", "DELETE"):
            cursor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                f"BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )


def _protect_postgres(recorder: PostgresApplicationRecorder) -> None:
    schema = recorder.datastore.schema or "public"
    table = f'"{schema}"."{recorder.events_table_name}"'
    function = f'"{schema}"."ledger_refuse_change"'
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
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
