"""Aggregate state kept in read-model rows, so projections reuse the domain's own rules.

Rather than re-implementing the order state machine in SQL (and risking the two drifting
apart), a projection restores the aggregate from its row, lets each event ``mutate`` it
exactly as the write side does on replay, and writes the resulting state back. The state
is serialised with the application's transcoder, the same way snapshots are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, Snapshot
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

    ``load`` fetches aggregates not yet seen in this batch from the projection's table (or
    returns ``None`` for one whose first event is in the batch).
    """

    def __init__(self, codec: StateCodec[A], txn: Txn, table: str) -> None:
        self.codec = codec
        self.txn = txn
        self.table = table
        self.aggregates: dict[UUID, A] = {}

    def apply(self, envelope: Envelope) -> A:
        event = envelope.event
        current = self.aggregates.get(event.originator_id) or self._from_row(event.originator_id)
        aggregate: A = event.mutate(current)
        self.aggregates[aggregate.id] = aggregate
        return aggregate

    def _from_row(self, aggregate_id: UUID) -> A | None:
        row = self.txn.one(
            f"SELECT version, state, updated_at FROM {self.table} WHERE id = :id",
            {"id": str(aggregate_id)},
        )
        if row is None:
            return None
        at = datetime.fromisoformat(row["updated_at"])
        return self.codec.load(aggregate_id, row["version"], row["state"], at)

    def touched(self) -> Sequence[A]:
        return list(self.aggregates.values())
