"""Guarded reads: the aggregates commands decide on, kept in memory and checked at the insert.

Loading an aggregate from the store for every command was a large part of its CPU (the gig
an order is placed on, about a tenth; the order each step of its life changes), and a load is
a wait on the store, which keeps a command off the event loop (``LedgerBase.perform``). So a
deciding command takes the latest state this process knows from its ``ReadCache``: what this
process last committed or loaded. What the command decided on is checked where it cannot be
wrong: its ``Pending`` names each aggregate it read and the version it read (``reads``), and
the insert transaction, holding the store's insert lock, refuses the whole command if one it
only read has a later event (``ledger.store``); one it writes is guarded by the (id, version)
keys of its own events. The command then loses a race as it would on any aggregate: it
forgets what it read and is decided again on the state as stored. A decision that ends
without events (a refusal, nothing to do) reaches no insert, so one taken on anything from
the cache is taken again on the state as stored (``LedgerBase._attempts``). A gig revised
or archived by another process therefore never takes an order at an old price or after it
was archived, and an order a worker's timer changed is never changed again on its old state.

The cache's aggregates are never changed in place: a command that changes one takes a copy
(``LedgerBase._load``); one that only reads it takes the instance (``_latest``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.recent import Recent

CACHED = 4_096
"""Aggregates kept (least recently used dropped first): a marketplace's live gigs."""

_reads: ContextVar[Read | None] = ContextVar("ledger_reads", default=None)


class ReadCache:
    """The last committed state this process knows of some aggregates, shared by its
    threads. Its aggregates are never changed in place."""

    def __init__(self, size: int = CACHED) -> None:
        self._kept: Recent[UUID, Aggregate] = Recent(size)
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            return self._kept.use(aggregate_id)

    def put(self, aggregate: Aggregate) -> None:
        """Keep ``aggregate`` unless a later version of it is kept already."""
        with self._lock:
            kept = self._kept.get(aggregate.id)
            if kept is None or kept.version < aggregate.version:
                self._kept.keep(aggregate.id, aggregate)

    def committed(self, aggregates: Iterable[Aggregate]) -> None:
        """Keep ``aggregates``, just committed by this process, as their latest state."""
        for aggregate in aggregates:
            self.put(aggregate)

    def forget(self, ids: Iterable[UUID]) -> None:
        """Drop ``ids``: a command decided on them lost to a later event."""
        with self._lock:
            for aggregate_id in ids:
                self._kept.pop(aggregate_id, None)


class Read(dict[UUID, int]):
    """What a deciding command read: id → version. ``cached``: the ids it took from the
    cache rather than from the store."""

    def __init__(self) -> None:
        super().__init__()
        self.cached: set[UUID] = set()


@contextmanager
def reading() -> Iterator[Read]:
    """Gather, while a command decides, what it read: id → version."""
    reads = Read()
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def deciding() -> bool:
    """Whether a command is deciding (inside ``reading``) in this context."""
    return _reads.get() is not None


def note(aggregate: Aggregate, *, cached: bool) -> None:
    """Record that the deciding command read ``aggregate`` at its version, from the cache
    (``cached``) or from the store."""
    reads = _reads.get()
    if reads is not None:
        reads[aggregate.id] = aggregate.version
        if cached:
            reads.cached.add(aggregate.id)
        else:
            reads.cached.discard(aggregate.id)


def only_read(reads: Mapping[UUID, int], written: Iterable[Aggregate]) -> dict[UUID, int]:
    """The reads to check at the insert: those of aggregates the command does not write
    (its own events' keys guard those)."""
    ids = {aggregate.id for aggregate in written}
    return {aggregate_id: v for aggregate_id, v in reads.items() if aggregate_id not in ids}
