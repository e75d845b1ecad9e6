"""``Idempotency-Key``: a retried POST gets the first answer again instead of acting twice.

Keys live in the ledger's own database (table ``idempotency_keys``), scoped to the caller,
for 24 hours, with a SHA-256 of the request (method, path, query and body). The first request
with a key *claims* it with an insert that only one of several concurrent requests can win;
the winner runs and then stores its answer; the others are told the key is in use (409,
``Retry-After``). A replay answers the stored status and body with ``Idempotent-Replayed:
true``; the same key with another request is ``idempotency_conflict``.

On the usual path each step is one statement, committed by itself (the claim's insert, the
answer's update): one round trip each.

Answers of 5xx are not kept (the client should retry; nothing was stored). Each claim names
its *owner*, the store of one process start (``owner``: its pid and a uuid4). A claim whose
owner is gone is taken over at once: on PostgreSQL each store holds a session advisory lock
keyed by its owner on a connection of its own for its whole life, so a claimant that can
take that lock (and drops it at once) knows the owner's session ended (the process died);
on SQLite (one machine) the owner's pid no longer runs, or it is this very process and the
owner is not one of its live stores (an earlier start). A claim whose request never finished
for another reason (an owner still alive, a claim older than owners) is released after
``STALE_CLAIM``, the last resort. The retry that
then wins it may follow a run that did commit: the command looks for that run's receipt,
written in the transaction of its events (``ledger.receipts``), and answers from it instead of
acting again. Commands that create things also derive the new id from the key and the
request (``derived_id``), so not even a lost receipt could create a second order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
import weakref
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

import psycopg
from anyio import to_thread

from api.http.idempotency.writer import INSERT_CLAIM, KeyWriter
from ledger.clock import Clock, iso
from ledger.receipts import RECEIPTS_TABLE
from projections.db import Database, Row, Txn

RETENTION = timedelta(hours=24)
STALE_CLAIM = timedelta(minutes=2)
MAX_KEY = 255
KEPT_HEADERS = ("content-type", "etag", "location", "x-ledger-position")
_NAMESPACE = UUID("0f3c2f7e-64a5-4d43-9a53-5f0b7c1a9e21")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        caller_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
        created_at TEXT NOT NULL, status INTEGER, headers TEXT, body BYTEA,
        PRIMARY KEY (caller_id, key))""",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at)",
)


_ADDED_COLUMNS = ("owner", "claim_id")
"""Columns newer than the table: added by ``setup`` to a table made before them."""
LOCK_CHECK = 5.0
"""Seconds between two checks that the owner's lock session is alive."""
_OWNER_LOCKS = 0x4C49
"""The first key of the owners' advisory locks (the second: ``hashtext(owner)``)."""
_LIVE: set[str] = set()
"""The owners of this process's open stores."""
_LIVE_GUARD = threading.Lock()


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


def _lapsed(row: Row, now: datetime) -> bool:
    limit = RETENTION if row["status"] is not None else STALE_CLAIM
    return str(row["created_at"]) < str(iso(now - limit))


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256(f"{method} {path}?{query}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def derived_id(caller_id: str, key: str, digest: str) -> UUID:
    """The id of what a keyed creating request makes: the same for every retry of that
    request, another for another request under the same key (after the key expired)."""
    return uuid5(_NAMESPACE, f"{caller_id}\n{key}\n{digest}")


@dataclass(frozen=True)
class Stored:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: ``won`` (go ahead), or what to answer instead.
    ``recheck``: won from a claim left unfinished, whose request may have committed."""

    won: bool
    replay: Stored | None = None
    conflict: bool = False
    recheck: bool = False


class IdempotencyStore:
    def __init__(self, db: Database, clock: Clock, owner: str | None = None) -> None:
        self.db = db
        self.clock = clock
        self._blob = "BYTEA" if db.postgres else "BLOB"
        self.owner = owner or f"{os.getpid()}:{uuid4().hex}"
        """Who claims keys through this store: this process's start (pid, then a uuid4)."""
        self._lock: psycopg.Connection[Any] | None = None
        self._checked = 0.0
        self._guard = threading.Lock()
        owner_of = weakref.WeakMethod(self._claim_owner)  # the writer keeps no store alive
        self._writer = KeyWriter(db, lambda: (method := owner_of()) and method())
        """Writes the claims and answers of concurrent requests together (``writer``)."""
        with _LIVE_GUARD:
            _LIVE.add(self.owner)
        weakref.finalize(self, _forget, self.owner, self.__dict__)

    def setup(self) -> None:
        with self.db.transaction() as txn:
            txn.lock_schema()
            for statement in SCHEMA:
                txn.execute(statement.replace("BYTEA", self._blob))
            for column in _ADDED_COLUMNS:
                if self.db.postgres:
                    txn.execute(
                        f"ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS {column} TEXT"
                    )
                elif not any(
                    row["name"] == column for row in txn.all("PRAGMA table_info(idempotency_keys)")
                ):
                    txn.execute(f"ALTER TABLE idempotency_keys ADD COLUMN {column} TEXT")
        self._hold_owner_lock()

    def close(self) -> None:
        """Write the claims and answers handed over, then let go of the owner's lock (its
        claims are then taken over at once)."""
        self._writer.close()
        with self._guard:
            if self._lock is not None:
                self._lock.close()
                self._lock = None
        with _LIVE_GUARD:
            _LIVE.discard(self.owner)

    def _hold_owner_lock(self) -> None:
        """PostgreSQL: hold the owner's advisory lock on a session of its own (again, if
        the database closed that session)."""
        if not self.db.postgres:
            return
        with self._guard:
            if self._lock is not None and self._alive(self._lock):
                return
            from projections.postgres import _connect  # the read side's dedicated sessions

            if self._lock is not None:
                with suppress(psycopg.Error):
                    self._lock.close()
            recorder: Any = self.db.recorder
            try:
                self._lock = _connect(recorder)
                self._lock.execute(
                    "SELECT pg_advisory_lock(%s, hashtext(%s))", (_OWNER_LOCKS, self.owner)
                )
                self._checked = time.monotonic()
            except psycopg.Error:
                self._lock = None  # claims are then written with no owner (``_owned``)

    def _owned(self) -> bool:
        """Whether this store's claims are covered by its owner's lock. Without the lock
        (PostgreSQL refused the session) a claim is written with no owner, so nobody takes
        it over before ``STALE_CLAIM``: a live request's claim must never look dead."""
        return not self.db.postgres or self._lock is not None

    def _alive(self, lock: psycopg.Connection[Any]) -> bool:
        """Whether the lock's session still holds: psycopg learns of a session the database
        closed only by using it, so it is asked (one round trip) at most every
        ``LOCK_CHECK`` seconds."""
        if lock.closed or lock.broken:
            return False
        if time.monotonic() - self._checked < LOCK_CHECK:
            return True
        try:
            lock.execute("SELECT 1")
        except psycopg.Error:
            return False
        self._checked = time.monotonic()
        return True

    def _gone(self, txn: Txn, owner: str | None) -> bool:
        """Whether the owner of an unfinished claim is gone (its claim can be taken over)."""
        if owner is None or owner == self.owner:
            return False
        if self.db.postgres:
            # Taken only if no session holds it, and dropped with this transaction.
            row = txn.one(
                "SELECT pg_try_advisory_xact_lock(:locks, hashtext(:owner)) AS free",
                {"locks": _OWNER_LOCKS, "owner": owner},
            )
            return bool(row and row["free"])
        pid, _, _ = owner.partition(":")
        if not pid.isdigit():
            return False
        if int(pid) == os.getpid():  # an earlier start in this process, or a live store
            with _LIVE_GUARD:
                return owner not in _LIVE
        return not _pid_runs(int(pid))

    def claim(self, caller_id: str, key: str, digest: str) -> Claim:
        """Take the key, or say what to answer instead. On the usual path the claim is one
        row of a statement shared with concurrent claims (``writer``)."""
        now, values = self._claim_of(caller_id, key, digest)
        if self._writer.claim(values).result():
            return Claim(won=True)
        return self._contested(values, now)

    async def aclaim(self, caller_id: str, key: str, digest: str) -> Claim:
        """``claim``, awaited on the event loop: the writer's future is awaited, and only
        a key found held takes a worker thread (to settle it in a transaction)."""
        now, values = self._claim_of(caller_id, key, digest)
        if await asyncio.wrap_future(self._writer.claim(values)):
            return Claim(won=True)
        return await to_thread.run_sync(self._contested, values, now)

    def _claim_of(self, caller_id: str, key: str, digest: str) -> tuple[datetime, dict[str, Any]]:
        now = self.clock()
        values = {
            "caller_id": caller_id,
            "key": key,
            "hash": digest,
            "now": iso(now),
            "claim_id": uuid4().hex,
        }
        return now, values

    def _claim_owner(self) -> str | None:
        """The owner a claim is written with (``_owned``), holding the owner's lock."""
        self._hold_owner_lock()
        return self.owner if self._owned() else None

    def _contested(self, values: dict[str, Any], now: datetime) -> Claim:
        """The key was held when the claim was written: by this very claim, tried twice; by
        a claim to take over (lapsed, or its owner gone); or by another request, whose
        answer (or refusal) is the answer."""
        values = {**values, "owner": self._claim_owner()}
        with self.db.transaction() as txn:
            row = txn.one(
                "SELECT request_hash, status, headers, body, created_at, owner, claim_id"
                " FROM idempotency_keys WHERE caller_id = :caller_id AND key = :key",
                values,
            )
            if row is not None and row["claim_id"] == values["claim_id"]:
                # This very claim: its INSERT committed, its answer was lost, and the
                # statement was tried again (``Database.returning``), finding itself.
                return Claim(won=True)
            if (
                row is None
                or _lapsed(row, now)  # expired, or its request died long ago
                or (row["status"] is None and self._gone(txn, row["owner"]))  # its owner died
            ):  # start over
                # Two requests may both find the row lapsed: only the one that deletes the
                # row it read may take the key (the other would delete the first's claim).
                if row is not None and not txn.execute(
                    "DELETE FROM idempotency_keys WHERE caller_id = :caller_id AND key = :key"
                    " AND created_at = :seen",
                    {**values, "seen": row["created_at"]},
                ):
                    return Claim(won=False)
                # An unfinished claim's request may have committed before its process died.
                unfinished = row is not None and row["status"] is None
                return Claim(won=txn.execute(INSERT_CLAIM, values) == 1, recheck=unfinished)
        if row["request_hash"] != values["hash"]:
            return Claim(won=False, conflict=True)
        if row["status"] is None:
            return Claim(won=False)
        headers = [(name, value) for name, value in json.loads(row["headers"])]
        return Claim(won=False, replay=Stored(row["status"], headers, bytes(row["body"])))

    async def acomplete(self, caller_id: str, key: str, answer: Stored) -> None:
        """Keep the answer sent under the key, in a statement shared with concurrent ones."""
        kept = [(n, v) for n, v in answer.headers if n.lower() in KEPT_HEADERS]
        values = {
            "caller_id": caller_id,
            "key": key,
            "status": answer.status,
            "headers": json.dumps(kept),
            "body": answer.body,
        }
        await asyncio.wrap_future(self._writer.keep(values))

    def release(self, caller_id: str, key: str) -> None:
        """Free an unfinished claim for a retry (the request failed with a 5xx). It is left
        as a lapsed claim rather than deleted: a failure of the store can leave unknown
        whether the command committed, so the retry looks for its receipt first."""
        lapsed = iso(self.clock() - STALE_CLAIM - timedelta(seconds=1))
        self.db.statement(
            "UPDATE idempotency_keys SET created_at = :lapsed"
            " WHERE caller_id = :caller_id AND key = :key AND status IS NULL",
            {"caller_id": caller_id, "key": key, "lapsed": lapsed},
        )

    def purge(self, now: datetime | None = None) -> int:
        """Delete the keys, and the commands' receipts, older than ``RETENTION``; returns
        how many keys."""
        cutoff = {"cutoff": iso((now or self.clock()) - RETENTION)}
        with self.db.transaction() as txn:
            txn.execute(f"DELETE FROM {RECEIPTS_TABLE} WHERE recorded_at < :cutoff", cutoff)
            return txn.execute("DELETE FROM idempotency_keys WHERE created_at < :cutoff", cutoff)


def _forget(owner: str, state: dict[str, Any]) -> None:
    """A store collected unclosed: its owner is gone from this process."""
    state["_writer"].close()
    lock = state.get("_lock")
    if lock is not None:
        lock.close()
    with _LIVE_GUARD:
        _LIVE.discard(owner)
