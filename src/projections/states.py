"""Aggregate state kept in read-model rows, so projections reuse the domain's own rules.

Rather than re-implementing the order state machine in SQL (and risking the two drifting
apart), a projection restores the aggregate from its row, lets each event ``mutate`` it
exactly as the write side does on replay, and writes the resulting state back. The state
is serialised with the application's transcoder, the same way snapshots are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, CanInitAggregate, Snapshot
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import get_topic

from projections.base import Envelope
from projections.db import Txn

A = TypeVar("A", bound=Aggregate)


class StateCodec(Generic[A]):
    """Turns an aggregate into text for a row, and back."""

    def __init__(self, kind: type[A], transcoder: Transcoder) -> None:
        self.kind = kind
        self.topic = get_topic(kind)
        self.transcoder = transcoder

    def dump(self, aggregate: A) -> str:
        return self.transcoder.encode(Snapshot.take(aggregate).state).decode()

    def load(self, aggregate_id: UUID, version: int, state: str, at: datetime) -> A:
        snapshot = Snapshot(
            originator_id=aggregate_id,
            originator_version=version,
            timestamp=at,
            topic=self.topic,
            state=self.transcoder.decode(state.encode()),
        )
        aggregate = snapshot.mutate(None)
        assert isinstance(aggregate, self.kind)
        return aggregate


class Evolver(Generic[A]):
    """Applies a batch of events to the aggregates they belong to.

    The aggregates a batch continues (not those it creates) are loaded from the projection's
    table together (``Txn.rows_in``), not one query per aggregate: rebuilds spend their time
    applying events.
    """

    def __init__(self, codec: StateCodec[A], txn: Txn, table: str) -> None:
        self.codec = codec
        self.txn = txn
        self.table = table
        self.aggregates: dict[UUID, A] = {}

    def apply_all(self, batch: Sequence[Envelope]) -> Iterator[tuple[Envelope, A]]:
        """Apply the events of ``batch`` in order, yielding each with its aggregate just
        after it (the same object mutates on: read what you need before the next)."""
        first: dict[UUID, object] = {}
        for envelope in batch:
            first.setdefault(envelope.event.originator_id, envelope.event)
        # An aggregate the batch creates has no row yet: do not look for one.
        self._load({i for i, event in first.items() if not isinstance(event, CanInitAggregate)})
        for envelope in batch:
            yield envelope, self.apply(envelope)

    def apply(self, envelope: Envelope) -> A:
        event = envelope.event
        aggregate: A = event.mutate(self.aggregates.get(event.originator_id))
        self.aggregates[aggregate.id] = aggregate
        return aggregate

    def _load(self, ids: set[UUID]) -> None:
        missing = sorted(str(i) for i in ids if i not in self.aggregates)
        select = f"SELECT id, version, state, updated_at FROM {self.table}"
        for row in self.txn.rows_in(select, "id", missing):
            aggregate_id = UUID(row["id"])
            at = datetime.fromisoformat(row["updated_at"])
            self.aggregates[aggregate_id] = self.codec.load(
                aggregate_id, row["version"], row["state"], at
            )

    def touched(self) -> Sequence[A]:
        return list(self.aggregates.values())
