"""The tamper-evident chain on both stores: built over every event, recomputed from the raw
rows; an event changed, deleted or slipped in is named by position, and a digest kept from
before a tampering no longer verifies.

Tampering needs the append-only guard off: the test drops it for the statement, as someone
with the database's owner rights could.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.helpers import delivered_order, open_gig, paid_order
from tests.integration.projection_helpers import head, open_runner
from tests.integration.test_append_only import RawStore, raw_store

from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.audit.chain import GENESIS
from projections.audit.verify import chain_head, event_page, verify_chain, verify_digest
from projections.runner import ProjectionRunner


@pytest.fixture
def runner(stored_app: LedgerApp) -> Iterator[ProjectionRunner]:
    delivered_order(stored_app, open_gig(stored_app))
    with open_runner(stored_app) as runner:
        runner.run_once(["audit"])
        yield runner


@pytest.fixture
def raw(stored_app: LedgerApp, settings: Settings) -> Iterator[RawStore]:
    with raw_store(settings, stored_app) as store:
        yield store


def tamper(raw: RawStore, statement: str) -> None:
    """Run ``statement`` on the events table with its append-only triggers out of the way."""
    table = raw.table
    if raw.is_postgres:
        raw.run(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        raw.run(statement.format(table=table, id="notification_id"))
        raw.run(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        return
    for operation in ("update", "delete"):
        raw.run(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
    raw.run(statement.format(table=table, id="rowid"))


def test_an_untouched_store_verifies(stored_app: LedgerApp, runner: ProjectionRunner) -> None:
    result = verify_chain(stored_app, runner.db)
    assert (result.ok, result.first_mismatch) == (True, None)
    assert result.events == head(stored_app) > 0
    assert (result.position, result.hash) == chain_head(runner.db)
    assert result.hash != GENESIS.hex()


def test_a_changed_event_is_named_by_its_position(
    stored_app: LedgerApp, runner: ProjectionRunner, raw: RawStore
) -> None:
    tamper(raw, "UPDATE {table} SET state = state || state WHERE {id} = 4")
    result = verify_chain(stored_app, runner.db)
    assert (result.ok, result.first_mismatch, result.events) == (False, 4, 3)


def test_a_changed_topic_counts_too(
    stored_app: LedgerApp, runner: ProjectionRunner, raw: RawStore
) -> None:
    tamper(raw, "UPDATE {table} SET originator_version = originator_version WHERE {id} = 2")
    assert verify_chain(stored_app, runner.db).ok, "rewriting the same bytes changes nothing"
    tamper(raw, "UPDATE {table} SET topic = topic || ' ' WHERE {id} = 2")
    assert verify_chain(stored_app, runner.db).first_mismatch == 2


def test_a_deleted_event_is_named_by_its_position(
    stored_app: LedgerApp, runner: ProjectionRunner, raw: RawStore
) -> None:
    tamper(raw, "DELETE FROM {table} WHERE {id} = 3")
    result = verify_chain(stored_app, runner.db)
    assert (result.ok, result.first_mismatch) == (False, 3)


def test_the_last_event_deleted_is_found(
    stored_app: LedgerApp, runner: ProjectionRunner, raw: RawStore
) -> None:
    last = head(stored_app)
    tamper(raw, f"DELETE FROM {{table}} WHERE {{id}} = {last}")
    assert verify_chain(stored_app, runner.db).first_mismatch == last


def test_events_not_yet_chained_are_not_claimed(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    chained = head(stored_app)
    paid_order(stored_app, open_gig(stored_app))
    result = verify_chain(stored_app, runner.db)
    assert (result.ok, result.position, result.events) == (True, chained, chained)
    runner.run_once(["audit"])
    assert verify_chain(stored_app, runner.db).events == head(stored_app)


def test_a_digest_from_before_a_tampering_no_longer_verifies(
    stored_app: LedgerApp, runner: ProjectionRunner, raw: RawStore
) -> None:
    position, digest = chain_head(runner.db)
    assert verify_digest(stored_app, runner.db, position, digest).ok
    assert not verify_digest(stored_app, runner.db, position, "0" * 64).ok
    tamper(raw, "UPDATE {table} SET state = state || state WHERE {id} = 1")
    assert not verify_digest(stored_app, runner.db, position, digest).ok


def test_a_digest_past_the_end_of_the_store_does_not_verify(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    position, digest = chain_head(runner.db)
    assert not verify_digest(stored_app, runner.db, position + 1, digest).ok


def test_the_feed_pages_through_the_log_in_order(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    seen, after = [], 0
    while True:
        page = event_page(stored_app, after, 3)
        if not page["data"]:
            assert page["nextAfter"] == after
            break
        seen += [record["position"] for record in page["data"]]
        after = page["nextAfter"]
    assert seen == list(range(1, head(stored_app) + 1))
