"""PostgreSQL's insert statement (``ledger_insert_events``) looks the guarded reads up by the
events table's key: it never scans the table, which would make every insert transaction
slower as the log grows. It did, until this test: the function's plan, cached by the writer's
session while the log was short, scanned the whole log in every insert transaction
(``bench.http``: some 55 scans a second, each of the whole table).

So the statement is run here in one session as the writer runs it: often while the log is
short (its plan is then cached), then once the log has grown. The session's own counts
(``pg_stat_xact_user_tables``, which the server has not gathered yet), read just before and
just after that last call, tell how it read the table. Nothing is inserted: the calls name
no events, only a read to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg.rows import dict_row
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import FREELANCER, open_gig

from ledger.service import LedgerApp
from ledger.settings import load_settings
from ledger.store import AppendOnlyPostgresRecorder

pytestmark = pytest.mark.postgres
LOG = 5_000
"""Events in the grown log."""


@dataclass(frozen=True)
class Writer:
    """A ledger on PostgreSQL, a gig in it, and a session of our own to run its insert
    statement in, as the writer's session does."""

    app: LedgerApp
    recorder: AppendOnlyPostgresRecorder
    session: psycopg.Connection[dict[str, Any]]
    gig: UUID

    def check_read(self, aggregate_id: UUID, version: int) -> dict[str, Any]:
        """Run the insert statement with one guarded read and no events, in a transaction
        of its own; how it read the events table (scans and index scans)."""
        statement = self.recorder._insert_statement.as_string(self.session)
        no_receipts: list[list[Any]] = [[]] * 7
        scans = "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = %s"
        table = (self.recorder.events_table_name,)
        with self.session.transaction(), self.session.cursor() as cursor:
            before = cursor.execute(scans, table).fetchone()
            cursor.execute(statement, [[], [aggregate_id], [version], *no_receipts])
            after = cursor.execute(scans, table).fetchone()
        assert before is not None and after is not None
        return {kind: after[kind] - before[kind] for kind in after}


@pytest.fixture
def writer(postgres_url: str, clock: FakeClock) -> Iterator[Writer]:
    settings = load_settings(LEDGER_DATABASE_URL=postgres_url, _env_file=None)
    with (
        open_app(settings, clock) as app,
        psycopg.connect(postgres_url, row_factory=dict_row) as session,
    ):
        assert isinstance(app.recorder, AppendOnlyPostgresRecorder)
        yield Writer(app, app.recorder, session, open_gig(app))


def test_the_guarded_reads_are_found_by_key_not_by_scanning_the_log(writer: Writer) -> None:
    version = writer.app.repository.get(writer.gig).version
    for _ in range(10):  # past the first five calls, the session keeps a generic plan
        writer.check_read(writer.gig, version)
    filler = [StoredEvent(uuid4(), 1, "tests:Filler", b"{}") for _ in range(LOG)]
    writer.recorder.insert_events(filler)
    assert writer.check_read(writer.gig, version)["seq_scan"] == 0


def test_a_read_that_a_later_event_superseded_is_refused(writer: Writer) -> None:
    read = writer.app.repository.get(writer.gig).version
    writer.app.revise_gig(FREELANCER, writer.gig, title="Logos")
    with pytest.raises(psycopg.errors.UniqueViolation, match="has a later event"):
        writer.check_read(writer.gig, read)
