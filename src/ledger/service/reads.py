"""Guarded reads: aggregates a command only reads, kept in memory and checked at the insert.

Placing an order reads its gig (the freelancer, the package and its price) and writes only
the order. Loading the gig from the store for every order was about a tenth of the CPU an
order costs (issue 23). So such reads come from this process's ``ReadCache``, and what the
command decided on is checked where it cannot be wrong: the command's ``Pending`` names each
aggregate it read and the version it read (``reads``), and the insert transaction, holding
the store's insert lock, refuses the whole command if any of them has a later event
(``ledger.store``). The command then loses a race as it would on an aggregate it wrote: it
forgets what it read and is decided again on fresh state. A gig revised or archived by
another process therefore never takes an order at an old price or after it was archived;
one changed by this process replaces the cached copy as soon as its events are committed.

Only aggregates a command does not write are read this way; a command that changes an
aggregate loads it fresh, and the (id, version) key of its own events guards it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

from eventsourcing.domain import Aggregate

CACHED = 4_096
"""Aggregates kept (least recently used dropped first): a marketplace's live gigs."""

_reads: ContextVar[dict[UUID, int] | None] = ContextVar("ledger_reads", default=None)


class ReadCache:
    """The last committed state this process knows of some aggregates, shared by its
    threads. Its aggregates are never changed in place: a command that writes one loads
    its own copy from the store."""

    def __init__(self, size: int = CACHED) -> None:
        self._size = size
        self._kept: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID) -> Aggregate | None:
        with self._lock:
            aggregate = self._kept.get(aggregate_id)
            if aggregate is not None:
                self._kept.move_to_end(aggregate_id)
            return aggregate

    def put(self, aggregate: Aggregate) -> None:
        """Keep ``aggregate`` unless a later version of it is kept already."""
        with self._lock:
            kept = self._kept.get(aggregate.id)
            if kept is not None and kept.version >= aggregate.version:
                return
            self._kept[aggregate.id] = aggregate
            self._kept.move_to_end(aggregate.id)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)

    def committed(self, aggregates: Iterable[Aggregate]) -> None:
        """Replace the kept copies of ``aggregates``, just committed by this process."""
        for aggregate in aggregates:
            with self._lock:
                cached = aggregate.id in self._kept
            if cached:
                self.put(aggregate)

    def forget(self, ids: Iterable[UUID]) -> None:
        """Drop ``ids``: a command decided on them lost to a later event."""
        with self._lock:
            for aggregate_id in ids:
                self._kept.pop(aggregate_id, None)


@contextmanager
def reading() -> Iterator[dict[UUID, int]]:
    """Gather, while a command decides, what it read through the cache: id → version."""
    reads: dict[UUID, int] = {}
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def note(aggregate: Aggregate) -> None:
    """Record that the deciding command read ``aggregate`` at its version."""
    reads = _reads.get()
    if reads is not None:
        reads[aggregate.id] = aggregate.version


def only_read(reads: Mapping[UUID, int], written: Iterable[Aggregate]) -> dict[UUID, int]:
    """The reads to check at the insert: those of aggregates the command does not write
    (its own events' keys guard those)."""
    ids = {aggregate.id for aggregate in written}
    return {aggregate_id: v for aggregate_id, v in reads.items() if aggregate_id not in ids}
