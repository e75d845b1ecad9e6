"""An order's whole story from the event store: every event of the order, of its payment and
of its conversation (the messages), in the order they were recorded, with who did it and
where the order stood after it.

Support reconstructs disputes from this, so it reads the write side (the events
themselves), never a read model that could lag or have been shaped for another question.
The library loads one aggregate's events without their notification ids (positions), and
selects notifications only by position; here both streams are read with their positions in
one indexed query, in one snapshot of the store, and replayed in memory.

**Paging is by log position** (``after``, ``limit``, ``next_after``), the way the audit feed
pages the whole log: the position is the one order the two streams share (an order's and its
payment's versions both start at 1), it is what every entry already shows, and it stays
valid as the order goes on (new events only come after it). Each entry's state is the
order's after that event, so the events before ``after`` are replayed too; they are few,
as an order's life is bounded (``Order.MAX_CANCELLATION_REQUESTS`` caps its one open-ended
loop). ``limit=None`` gives the whole story (``ledger dispute``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, Notification

from ledger import access
from ledger.actors import Actor, Caller
from ledger.domain.conversation import conversation_id_for
from ledger.domain.order import Order
from ledger.domain.payment import Payment, payment_id_for
from ledger.domain.values import OrderStatus, Stage
from ledger.errors import NotFound
from ledger.service.base import LedgerBase
from ledger.store import EventsOf


@dataclass(frozen=True)
class TimelineEntry:
    """One event, its position in the log, who acted, and the order's state after it (for
    a payment event: the order's state at that moment)."""

    position: int
    event: Aggregate.Event
    actor: Actor
    status: OrderStatus
    stage: Stage

    @property
    def kind(self) -> str:
        """The event's type name (``OrderPlaced``)."""
        return type(self.event).__name__


@dataclass(frozen=True)
class Timeline:
    """The order and its payment as they are now, and every event that made them."""

    order: Order
    payment: Payment | None
    entries: list[TimelineEntry]
    next_after: int | None = None
    """The last entry's position when more follow it (ask again with ``after`` set to it);
    ``None`` when ``entries`` reach the end of the story."""


class TimelineCommands(LedgerBase):
    """Reading an order's history from the events (support, auditors, the parties)."""

    def order_timeline(
        self, caller: Caller, order_id: UUID, after: int = 0, limit: int | None = None
    ) -> Timeline:
        """The events of the order and of its payment at positions after ``after``, oldest
        first: at most ``limit`` of them (every one when ``None``).

        Raises:
            NotFound: no such order (an id of something else included), or not the caller's.
        """
        payment_id = payment_id_for(order_id)
        events = self._events_of(order_id, payment_id, conversation_id_for(order_id))
        order: Order | None = None
        payment: Payment | None = None
        entries: list[TimelineEntry] = []
        for position, event in events:
            if event.originator_id == order_id:
                order = event.mutate(order)
            elif event.originator_id == payment_id:
                payment = event.mutate(payment)
            elif "actor" not in vars(event):  # the conversation's opening: nobody's act
                continue
            if not isinstance(order, Order):  # not an order, or the payment came first
                raise NotFound(f"order {order_id} not found")
            actor = vars(event)["actor"]
            entries.append(TimelineEntry(position, event, actor, order.status, order.stage))
        if order is None:
            raise NotFound(f"order {order_id} not found")
        access.require_visible(caller, order)
        entries = [entry for entry in entries if entry.position > after]
        if limit is None or len(entries) <= limit:
            return Timeline(order, payment, entries)
        return Timeline(order, payment, entries[:limit], entries[limit - 1].position)

    def _events_of(self, *ids: UUID) -> list[tuple[int, Aggregate.Event]]:
        """The decoded events of the aggregates ``ids`` with their positions, by position."""
        decode = self.mapper.to_domain_event
        return [
            (stored.id, cast(Aggregate.Event, decode(stored)))
            for stored in stored_events_of(self.recorder, ids)
        ]


def stored_events_of(recorder: ApplicationRecorder, ids: Sequence[UUID]) -> list[Notification]:
    """The stored events of the aggregates ``ids``, each with its notification id, in log
    order: one indexed query on our SQL stores (``ledger.store.EventsOf``); other stores
    (the in-memory one of unit tests) are scanned whole."""
    if isinstance(recorder, EventsOf):
        return recorder.events_of(ids)
    head = recorder.max_notification_id() or 0
    return [
        notification
        for notification in recorder.select_notifications(start=None, limit=head)
        if notification.originator_id in ids
    ]
