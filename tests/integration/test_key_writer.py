"""The idempotency keys' writer: the claims and answers of concurrent requests written
together (``api.http.idempotency.writer``), on SQLite and PostgreSQL.

Requests are held back at a gate while the writer is busy, so that what they hand over
meanwhile is written by one statement: the claims of one key in one statement are won once,
each answer lands on its own row, and a failing store fails every job with its own copy of
the error, which the middleware answers as 503.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError
from tests.conftest import FakeClock, open_app

from api.http.idempotency.keys import IdempotencyStore, Stored
from api.http.idempotency.writer import KeyWriter
from ledger.settings import Settings
from projections.db import Database


@pytest.fixture
def store(settings: Settings, clock: FakeClock) -> Iterator[IdempotencyStore]:
    with open_app(settings, clock) as app:
        store = IdempotencyStore(Database(app.recorder), clock)
        store.setup()
        try:
            yield store
        finally:
            store.close()


class Gate:
    """Holds the writer in its first batch until released, counting the batches."""

    def __init__(self, writer: KeyWriter) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.batches: list[int] = []
        insert = writer._insert_claims

        def held(jobs: Any) -> set[int]:
            self.batches.append(len(jobs))
            self.entered.set()
            assert self.release.wait(10)
            return insert(jobs)

        writer._insert_claims = held  # type: ignore[method-assign]


def claim(store: IdempotencyStore, key: str, digest: str = "hash") -> Future[bool]:
    return store._writer.claim(store._claim_of("caller", key, digest)[1])


def rows(store: IdempotencyStore) -> list[dict[str, Any]]:
    with store.db.transaction(write=False) as txn:
        return txn.all("SELECT key, claim_id, status, body FROM idempotency_keys ORDER BY key")


def test_claims_handed_over_while_the_writer_is_busy_are_written_together(
    store: IdempotencyStore,
) -> None:
    gate = Gate(store._writer)
    first = claim(store, "k-0")
    assert gate.entered.wait(10)
    waiting = [claim(store, f"k-{i}") for i in range(1, 40)]
    gate.release.set()
    assert first.result(10) and all(f.result(10) for f in waiting)
    assert gate.batches == [1, 39]
    assert [row["key"] for row in rows(store)] == sorted(f"k-{i}" for i in range(40))


def test_two_claims_of_one_key_in_one_statement_win_once(store: IdempotencyStore) -> None:
    gate = Gate(store._writer)
    blocker = claim(store, "other")
    assert gate.entered.wait(10)
    twins = [claim(store, "same"), claim(store, "same")]
    gate.release.set()
    assert blocker.result(10)
    assert sorted(f.result(10) for f in twins) == [False, True]
    assert gate.batches == [1, 2]
    # The loser is settled as a key held by a request still running.
    settled = store.claim("caller", "same", "hash")
    assert not settled.won and settled.replay is None and not settled.conflict


def test_the_answers_of_concurrent_requests_land_on_their_own_rows(
    store: IdempotencyStore,
) -> None:
    for i in range(20):
        assert store.claim("caller", f"k-{i:02}", "hash").won

    async def keep_all() -> None:
        await asyncio.gather(
            *(
                store.acomplete("caller", f"k-{i:02}", Stored(201, [("ETag", f'"{i}"')], b"%d" % i))
                for i in range(20)
            )
        )

    asyncio.run(keep_all())
    kept = rows(store)
    assert [(row["status"], bytes(row["body"])) for row in kept] == [
        (201, b"%d" % i) for i in range(20)
    ]
    replay = store.claim("caller", "k-07", "hash").replay
    assert replay is not None and replay.headers == [("ETag", '"7"')] and replay.body == b"7"


def test_a_failing_store_fails_each_job_with_its_own_error(
    store: IdempotencyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(jobs: Any) -> set[int]:
        raise OperationalError("the database is down")

    monkeypatch.setattr(store._writer, "_insert_claims", down)
    futures = [claim(store, f"k-{i}") for i in range(5)]
    errors = [f.exception(10) for f in futures]
    assert all(isinstance(e, OperationalError) for e in errors)
    assert len({id(e) for e in errors}) == 5, "one copy each: raised in five threads"
    monkeypatch.undo()
    assert store.claim("caller", "k-0", "hash").won, "nothing was written: the key is free"


def test_a_closed_writer_writes_what_it_was_handed_and_refuses_the_rest(
    store: IdempotencyStore,
) -> None:
    gate = Gate(store._writer)
    first = claim(store, "k-1")
    assert gate.entered.wait(10)
    queued = claim(store, "k-2")
    closing = threading.Thread(target=store._writer.close)
    closing.start()
    gate.release.set()
    closing.join(10)
    assert not closing.is_alive()
    assert first.result(10) and queued.result(10)
    assert isinstance(claim(store, "k-3").exception(10), OperationalError)
    assert [row["key"] for row in rows(store)] == ["k-1", "k-2"]
