"""Order history: every order as the API shows it, and each order's status history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.persistence import Transcoder

from ledger.clock import iso
from ledger.domain.order import Order
from projections.base import Envelope, Projection, topics_of
from projections.db import Txn
from projections.states import Evolver, StateCodec

UPSERT_ORDER = """
INSERT INTO orders (id, position, user_id, gig_id, package_id, freelancer_id, status, stage,
    total_amount, currency, package, revisions_used, requirements, due_at, delivered_at,
    cancellation_requested_at, marked_late_at, extension, created_at, updated_at, version,
    state)
VALUES (:id, :position, :user_id, :gig_id, :package_id, :freelancer_id, :status, :stage,
    :total_amount, :currency, :package, :revisions_used, :requirements, :due_at, :delivered_at,
    :cancellation_requested_at, :marked_late_at, :extension, :created_at, :updated_at, :version,
    :state)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, stage = excluded.stage,
    revisions_used = excluded.revisions_used, requirements = excluded.requirements,
    due_at = excluded.due_at, delivered_at = excluded.delivered_at,
    extension = excluded.extension,
    cancellation_requested_at = excluded.cancellation_requested_at,
    marked_late_at = excluded.marked_late_at, updated_at = excluded.updated_at,
    version = excluded.version, state = excluded.state
"""

INSERT_HISTORY = """
INSERT INTO order_history (order_id, version, position, status, stage, event, at, actor_id,
    actor_role)
VALUES (:order_id, :version, :position, :status, :stage, :event, :at, :actor_id, :actor_role)
"""


class OrderHistory(Projection):
    """``orders`` (one row per order, newest first by ``position``) and ``order_history``."""

    name: ClassVar[str] = "orders"
    tables: ClassVar[tuple[str, ...]] = ("order_history", "orders")
    version: ClassVar[int] = 4
    """2: orders hold escrow fields (released, cleared, refunds). 3: the deadlines' times
    (``delivered_at``, ``cancellation_requested_at``, ``marked_late_at``). 4: the open
    delivery extension request (``extension``)."""

    def __init__(self, transcoder: Transcoder) -> None:
        self.codec = StateCodec(Order, transcoder)

    @property
    def topics(self) -> Sequence[str]:
        return topics_of(Order)

    def schema(self) -> Sequence[str]:
        return [
            """CREATE TABLE IF NOT EXISTS orders (
                id TEXT PRIMARY KEY, position BIGINT NOT NULL, user_id TEXT NOT NULL,
                gig_id TEXT NOT NULL, package_id TEXT NOT NULL, freelancer_id TEXT NOT NULL,
                status TEXT NOT NULL, stage TEXT NOT NULL, total_amount BIGINT NOT NULL,
                currency TEXT NOT NULL, package TEXT NOT NULL, revisions_used INTEGER NOT NULL,
                requirements TEXT, due_at TEXT, delivered_at TEXT,
                cancellation_requested_at TEXT, marked_late_at TEXT, extension TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS orders_by_position ON orders (position)",
            "CREATE INDEX IF NOT EXISTS orders_by_client ON orders (user_id, position)",
            "CREATE INDEX IF NOT EXISTS orders_by_freelancer ON orders (freelancer_id, position)",
            "CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, position)",
            # The deadline timers' candidates, in partial indexes of the orders that may be due.
            """CREATE INDEX IF NOT EXISTS orders_awaiting_completion ON orders (delivered_at)
                WHERE stage = 'delivered'""",
            """CREATE INDEX IF NOT EXISTS orders_awaiting_cancellation_answer
                ON orders (cancellation_requested_at) WHERE stage = 'cancellation_requested'""",
            """CREATE INDEX IF NOT EXISTS orders_not_marked_late ON orders (status, due_at)
                WHERE marked_late_at IS NULL""",
            """CREATE TABLE IF NOT EXISTS order_history (
                order_id TEXT NOT NULL, version INTEGER NOT NULL, position BIGINT NOT NULL,
                status TEXT NOT NULL, stage TEXT NOT NULL, event TEXT NOT NULL,
                at TEXT NOT NULL, actor_id TEXT NOT NULL, actor_role TEXT NOT NULL,
                PRIMARY KEY (order_id, version))""",
        ]

    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        evolver = Evolver(self.codec, txn, "orders")
        created: dict[Any, int] = {}
        history = []
        for envelope, order in evolver.apply_all(batch):
            if order.version == 1:
                created[order.id] = envelope.position
            history.append(_history_row(envelope, order))
        txn.executemany(
            UPSERT_ORDER,
            [
                {**order_row(order, created.get(order.id, 0)), "state": self.codec.dump(order)}
                for order in evolver.touched()
            ],
        )
        txn.executemany(INSERT_HISTORY, history)


def order_row(order: Order, position: int = 0) -> dict[str, Any]:
    """The ``orders`` row of an order (without ``state``); the API also shows a just-saved
    order through it, so a command's answer and the read model never disagree."""
    return {
        "id": str(order.id),
        "position": position,
        "user_id": order.client_id,
        "gig_id": str(order.gig_id),
        "package_id": order.package.package_id,
        "freelancer_id": order.freelancer_id,
        "status": str(order.status),
        "stage": str(order.stage),
        "total_amount": order.total,
        "currency": "MAD",
        "package": json.dumps(vars(order.package)),  # asdict() deep-copies: slow
        "revisions_used": order.revisions_used,
        "requirements": order.requirements,
        "due_at": iso(order.due_at),
        "delivered_at": iso(order.delivered_at),
        "cancellation_requested_at": iso(order.cancellation_requested_at),
        "marked_late_at": iso(order.marked_late_at),
        "extension": _extension(order),
        "created_at": iso(order.created_on),
        "updated_at": iso(order.modified_on),
        "version": order.version,
    }


def _extension(order: Order) -> str | None:
    """The open extension request as the API shows it (JSON), or ``None``."""
    asked = order.extension
    if asked is None:
        return None
    requested_at = asked["requested_at"]
    assert isinstance(requested_at, datetime)
    view = {"days": asked["days"], "reason": asked["reason"], "requestedAt": iso(requested_at)}
    return json.dumps(view)


def _history_row(envelope: Envelope, order: Order) -> dict[str, Any]:
    actor = envelope.event.actor
    return {
        "order_id": str(order.id),
        "version": order.version,
        "position": envelope.position,
        "status": str(order.status),
        "stage": str(order.stage),
        "event": envelope.kind,
        "at": iso(envelope.event.timestamp),
        "actor_id": actor.id,
        "actor_role": actor.role,
    }
