"""The claims and kept answers of concurrent keyed requests, written together.

Claiming a key and keeping its answer were one statement each per request, each a round
trip and a hop to a worker thread: about a quarter of the CPU an order cost (issue 23). As
group commit does for the events (``ledger.service.commit``), one thread per store takes
whatever claims and answers gathered while its previous statements ran and writes each kind
in one statement: on PostgreSQL an ``INSERT … SELECT FROM unnest(…) … ON CONFLICT DO NOTHING
RETURNING`` that tells which claims were won, and an ``UPDATE … FROM unnest(…)`` for the
answers; on SQLite, which has no round trips to save, one transaction of single-row
statements. Each statement commits by itself, as before: a claim is committed before its
request runs, an answer after it was sent. The requests wait on futures, so the event loop
awaits them without a worker thread of its own.

A claim that was not inserted (the key is held) is only reported here: the store settles it
(``IdempotencyStore._contested``) in the requester's thread, in a transaction of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Empty
from typing import Any

from eventsourcing.persistence import OperationalError

from ledger.threads import Fed
from projections.db import Database

MAX_BATCH = 512
"""Claims or answers written by one statement at most."""

INSERT_CLAIM = (
    "INSERT INTO idempotency_keys (caller_id, key, request_hash, created_at, owner, claim_id)"
    " VALUES (:caller_id, :key, :hash, :now, :owner, :claim_id) ON CONFLICT DO NOTHING"
)
_INSERT_CLAIMS = (
    "INSERT INTO idempotency_keys (caller_id, key, request_hash, created_at, owner, claim_id)"
    " SELECT * FROM unnest(:caller_id::text[], :key::text[], :hash::text[], :now::text[],"
    " :owner::text[], :claim_id::text[]) ON CONFLICT DO NOTHING RETURNING claim_id"
)
KEEP_ANSWER = (
    "UPDATE idempotency_keys SET status = :status, headers = :headers, body = :body"
    " WHERE caller_id = :caller_id AND key = :key"
)
_KEEP_ANSWERS = (
    "UPDATE idempotency_keys AS k SET status = a.status, headers = a.headers, body = a.body"
    " FROM unnest(:caller_id::text[], :key::text[], :status::int[], :headers::text[],"
    " :body::bytea[]) AS a(caller_id, key, status, headers, body)"
    " WHERE k.caller_id = a.caller_id AND k.key = a.key"
)


@dataclass(eq=False)
class _Job:
    """One claim (``values`` of ``INSERT_CLAIM``, but ``owner``) or one answer to keep."""

    claim: bool
    values: dict[str, Any]
    outcome: Future[bool] = field(default_factory=Future)


class KeyWriter:
    """One thread writing the claims and answers handed to it, a batch at a time.

    ``owner`` is asked once per batch which owner its claims are written with (holding, or
    taking again, the owner's lock: ``IdempotencyStore._hold_owner_lock``); it is called in
    this thread, so that no requester waits on that lock's round trip.
    """

    def __init__(self, db: Database, owner: Callable[[], str | None]) -> None:
        self.db = db
        self._owner = owner
        self._fed: Fed[_Job] = Fed(
            "ledger-idempotency-keys", self._run, "the idempotency store is closed"
        )

    def claim(self, values: dict[str, Any]) -> Future[bool]:
        """Insert a claim (``caller_id``, ``key``, ``hash``, ``now``, ``claim_id``); the
        future tells whether it was inserted, or raises the store's failure."""
        return self._submit(_Job(True, values))

    def keep(self, values: dict[str, Any]) -> Future[bool]:
        """Store an answer (``caller_id``, ``key``, ``status``, ``headers``, ``body``) on its
        claim's row."""
        return self._submit(_Job(False, values))

    def close(self) -> None:
        """Write what is queued, then stop; later jobs fail as a closed store would."""
        self._fed.close()

    def _submit(self, job: _Job) -> Future[bool]:
        # Running, so that a request cancelled while it awaits cannot cancel it: the writer
        # answers every job, and must not find one cancelled.
        job.outcome.set_running_or_notify_cancel()
        try:
            self._fed.put(job)
        except OperationalError as closed:
            job.outcome.set_exception(closed)
        return job.outcome

    def _run(self) -> None:
        while True:
            first = self._fed.queue.get()
            if first is None:
                return
            jobs, stop = [first], False
            while len(jobs) < 2 * MAX_BATCH:
                try:
                    job = self._fed.queue.get_nowait()
                except Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            self._write([job for job in jobs if job.claim], self._insert_claims)
            self._write([job for job in jobs if not job.claim], self._keep_answers)
            if stop:
                return

    @staticmethod
    def _write(jobs: list[_Job], write: Callable[[list[_Job]], set[int]]) -> None:
        """Run ``write`` on ``jobs`` (``MAX_BATCH`` at a time) and answer each job: whether
        its row was written, or its own copy of the failure (each requester raises it in a
        thread of its own)."""
        for start in range(0, len(jobs), MAX_BATCH):
            chunk = jobs[start : start + MAX_BATCH]
            try:
                written = write(chunk)
            except BaseException as error:
                for job in chunk:
                    job.outcome.set_exception(copy.copy(error))
                if not isinstance(error, Exception):
                    raise
                continue
            for index, job in enumerate(chunk):
                job.outcome.set_result(index in written)

    def _insert_claims(self, jobs: list[_Job]) -> set[int]:
        owner = self._owner()
        rows = [{**job.values, "owner": owner} for job in jobs]
        if self.db.postgres:
            won = {row["claim_id"] for row in self.db.returning(_INSERT_CLAIMS, _arrays(rows))}
            return {i for i, row in enumerate(rows) if row["claim_id"] in won}
        with self.db.transaction() as txn:  # SQLite: one transaction, no round trips
            return {i for i, row in enumerate(rows) if txn.execute(INSERT_CLAIM, row)}

    def _keep_answers(self, jobs: list[_Job]) -> set[int]:
        rows = [job.values for job in jobs]
        if self.db.postgres:
            self.db.statement(_KEEP_ANSWERS, _arrays(rows))
        else:
            with self.db.transaction() as txn:
                txn.executemany(KEEP_ANSWER, rows)
        return set(range(len(rows)))


def _arrays(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column-wise parameters for ``unnest``: one array per named value."""
    return {name: [row[name] for row in rows] for name in rows[0]}
