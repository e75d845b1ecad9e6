"""What auditors run against the raw event store: the chain recomputed and compared, a
digest checked, and the log itself read page by page or streamed whole.

Verification never trusts a decoded event or a read model for the bytes: it hashes the rows
as the store returns them (``select_notifications``), the same bytes the chain was built on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.service import LedgerApp
from projections.audit.chain import GENESIS, next_hash
from projections.db import Database
from projections.events import event_record
from projections.log import log_batches

BATCH = 10_000
MAX_FEED = 1_000
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Verification:
    """``ok`` when every event up to ``position`` hashes to the link kept for it (or, for a
    digest, to the digest's hash); else ``first_mismatch`` names the first that does not."""

    ok: bool
    events: int
    position: int
    hash: str
    first_mismatch: int | None

    def as_api(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": {"position": self.position, "hash": self.hash},
            "firstMismatch": self.first_mismatch,
        }


def stored_rows(
    app: LedgerApp, db: Database, after: int, stop: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The raw log as ``(position, stream, version, topic, state)`` tuples, ``BATCH`` at a
    time: what the chain hashes, without building an object per event on the way."""
    table = getattr(app.recorder, "events_table_name", "stored_events")
    position = "notification_id" if db.postgres else "rowid"
    stream = "replace(originator_id::text, '-', '')" if db.postgres else "originator_id"
    # No upper bound in SQL: with both bounds PostgreSQL's estimate (stale right after a
    # bulk load) picks a bitmap scan and a sort, three times slower than the index scan.
    select = (
        f"SELECT {position}, {stream}, originator_version, topic, state FROM {table}"
        f" WHERE {position} > :after ORDER BY {position} LIMIT :limit"
    )
    while after < stop:
        with db.transaction(write=False) as txn:
            rows = txn.tuples(select, {"after": after, "limit": BATCH})
        rows = [row for row in rows if row[0] <= stop] if rows and rows[-1][0] > stop else rows
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def chain_head(db: Database) -> tuple[int, str]:
    """The last link of the chain: (position, hex hash); (0, zeros) before any event."""
    rows = db.read("SELECT position, hash FROM audit_chain ORDER BY position DESC LIMIT 1")
    return (int(rows[0]["position"]), rows[0]["hash"]) if rows else (0, GENESIS.hex())


def verify_chain(app: LedgerApp, db: Database, progress: Progress | None = None) -> Verification:
    """Recompute the chain from the raw store up to its last link and compare every link:
    an event changed, deleted or inserted since it was chained is the first mismatch."""
    end, _ = chain_head(db)
    previous, events, after = GENESIS, 0, 0
    for rows in stored_rows(app, db, 0, end):
        upper = rows[-1][0] if len(rows) == BATCH else end
        links = _links(db, after, upper)
        for row in rows:
            previous = next_hash(previous, *row)
            if links.pop(row[0], None) != previous.hex():
                missing = [position for position in links if position < row[0]]
                return Verification(False, events, end, previous.hex(), min([row[0], *missing]))
            events += 1
        if links:  # links whose events are gone
            return Verification(False, events, end, previous.hex(), min(links))
        after = upper
        if progress is not None:
            progress(after, end)
    leftover = _links(db, after, end)
    if leftover:
        return Verification(False, events, end, previous.hex(), min(leftover))
    return Verification(True, events, end, previous.hex(), None)


def verify_digest(
    app: LedgerApp, db: Database, position: int, expected: str, progress: Progress | None = None
) -> Verification:
    """Recompute the chain from the raw store alone up to ``position`` and compare it with
    a digest kept outside the system (the chain table is not consulted)."""
    previous, events, last = GENESIS, 0, 0
    for rows in stored_rows(app, db, 0, position):
        for row in rows:
            previous = next_hash(previous, *row)
        events, last = events + len(rows), rows[-1][0]
        if progress is not None:
            progress(last, position)
    ok = last == position and previous.hex() == expected.lower()
    return Verification(ok, events, last, previous.hex(), None if ok else last)


def _links(db: Database, after: int, upper: int) -> dict[int, str]:
    with db.transaction(write=False) as txn:
        rows = txn.tuples(
            "SELECT position, hash FROM audit_chain WHERE position > :after AND position <= :upper",
            {"after": after, "upper": upper},
        )
    return {int(position): hash_ for position, hash_ in rows}


def event_page(app: LedgerApp, after: int, limit: int) -> dict[str, Any]:
    """``{"data": [...], "nextAfter"}``: up to ``limit`` events after ``after``, in log
    order; ``nextAfter`` is where to continue (``after`` again when nothing is new)."""
    rows = app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
    decode = app.mapper.to_domain_event
    data = [event_record(row.id, decode(row)) for row in rows]
    return {"data": data, "nextAfter": rows[-1].id if rows else after}


def every_event(
    app: LedgerApp, until: datetime | None = None, progress: Progress | None = None
) -> Iterator[dict[str, Any]]:
    """Every event as a record, in log order, streamed; only those at or before ``until``."""
    head = app.recorder.max_notification_id() or 0
    decode = app.mapper.to_domain_event
    for rows in log_batches(app.recorder, head):
        for row in rows:
            event: Any = decode(row)
            if until is None or event.timestamp <= until:
                yield event_record(row.id, event)
        if progress is not None:
            progress(rows[-1].id, head)
