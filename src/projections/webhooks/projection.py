"""Webhook deliveries decided from the log: for each order or payment event of a public type,
one delivery to every endpoint subscribed to it *at that point of the log*.

The decision is a projection like the others, so it is made exactly once, in the transaction
that moves its position: an event can never be skipped, and a crash between deciding and
sending loses nothing (the delivery row waits for the dispatcher, ``api.delivery``). The
endpoints themselves are read from their own events (``webhook_endpoints``, the read model
the API lists), so an endpoint registered at position *p* is sent the events after *p*, and
one deleted is sent nothing from then on (what waited for it is given up). One disabled is
still decided deliveries, which wait until it is enabled again, and are then retried for a
full three days.

``webhook_deliveries`` and ``webhook_attempts`` carry the dispatcher's progress, which the
log cannot rebuild, and ``webhook_decided`` how far each endpoint's deliveries were decided:
they are created here but are not among ``tables``, so a rebuild of this projection keeps
them and decides nothing again (a delivery's id, from its endpoint and position, guards the
same besides).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar
from uuid import UUID, uuid5

from ledger.clock import iso
from ledger.domain.endpoint import ALL, EVENT_TYPES, WebhookEndpoint
from ledger.domain.order import Order
from ledger.domain.payment import Payment
from projections.base import Envelope, Projection, topics_named
from projections.db import Txn

DELIVERY_NAMESPACE = UUID("5d0b52f4-77a1-4c1e-9a53-2b8f1d6e9c30")
ENDPOINT_EVENTS = (
    "EndpointRegistered",
    "EndpointChanged",
    "EndpointDisabled",
    "SecretRotated",
    "EndpointDeleted",
)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

UPSERT_ENDPOINT = """
INSERT INTO webhook_endpoints (id, position, url, events, description, enabled,
    disabled_reason, generation, previous_until, deleted, created_by, created_at, updated_at,
    version)
VALUES (:id, :position, :url, :events, :description, :enabled, :disabled_reason, :generation,
    :previous_until, :deleted, :created_by, :created_at, :updated_at, :version)
ON CONFLICT (id) DO UPDATE SET url = excluded.url, events = excluded.events,
    description = excluded.description, enabled = excluded.enabled,
    disabled_reason = excluded.disabled_reason, generation = excluded.generation,
    previous_until = excluded.previous_until, deleted = excluded.deleted,
    updated_at = excluded.updated_at, version = excluded.version
"""
INSERT_PAYMENT = """
INSERT INTO webhook_payments (payment_id, order_id) VALUES (:payment_id, :order_id)
ON CONFLICT (payment_id) DO NOTHING
"""
INSERT_DELIVERY = """
INSERT INTO webhook_deliveries (id, position, event_id, endpoint_id, order_key, type, kind,
    stream_id, stream_version, created_at, status, attempts, next_attempt_at)
VALUES (:id, :position, :event_id, :endpoint_id, :order_key, :type, :kind, :stream_id,
    :stream_version, :created_at, 'pending', 0, :created_at)
ON CONFLICT (id) DO NOTHING
"""

SELECT_DECIDED = "SELECT endpoint_id, through FROM webhook_decided"
UPSERT_DECIDED = """
INSERT INTO webhook_decided (endpoint_id, through) VALUES (:endpoint_id, :through)
ON CONFLICT (endpoint_id) DO UPDATE SET through = excluded.through
"""
"""How far in the log each endpoint's deliveries were decided: kept through a rebuild, so
the replay decides nothing again (not even for a type added since, or a delivery gone)."""
GIVE_UP_DELETED = """
UPDATE webhook_deliveries SET status = 'failed', last_error = 'the endpoint was deleted'
WHERE endpoint_id = :endpoint AND status IN ('pending', 'sending')
"""
RESTART_WINDOW = """
UPDATE webhook_deliveries SET first_attempt_at = NULL
WHERE endpoint_id = :endpoint AND status = 'pending'
"""
"""Enabled again: what waited is retried for a full ``GIVE_UP`` period from now on."""


def delivery_id(endpoint_id: str, position: int) -> str:
    """The one delivery of the event at ``position`` to an endpoint."""
    return str(uuid5(DELIVERY_NAMESPACE, f"{endpoint_id}:{position}"))


def event_id(position: int) -> str:
    """The public id of the event at ``position``: the same for every endpoint and every
    attempt, so a receiver deduplicates on it."""
    return f"evt_{position}"


@dataclass
class EndpointRow:
    id: str
    position: int
    url: str
    events: str
    description: str | None
    enabled: bool
    disabled_reason: str | None
    generation: int
    previous_until: str | None
    deleted: bool
    created_by: str
    created_at: str
    updated_at: str
    version: int

    def wants(self, public_type: str) -> bool:
        """Whether an event of ``public_type`` is for this endpoint: one disabled still gets
        its deliveries, held until it is enabled again (nothing is lost meanwhile)."""
        subscribed = json.loads(self.events)
        return not self.deleted and (ALL in subscribed or public_type in subscribed)


class WebhookDeliveries(Projection):
    """``webhook_endpoints`` and ``webhook_payments`` (derived), and the deliveries decided
    into ``webhook_deliveries``."""

    name: ClassVar[str] = "webhooks"
    tables: ClassVar[tuple[str, ...]] = ("webhook_endpoints", "webhook_payments")

    def __init__(self) -> None:
        wanted = {*EVENT_TYPES, *ENDPOINT_EVENTS, "PaymentCreated"}
        self._topics = topics_named(wanted, Order, Payment, WebhookEndpoint)

    @property
    def topics(self) -> Sequence[str]:
        return self._topics

    def schema(self) -> Sequence[str]:
        return [
            """CREATE TABLE IF NOT EXISTS webhook_endpoints (
                id TEXT PRIMARY KEY, position BIGINT NOT NULL UNIQUE, url TEXT NOT NULL,
                events TEXT NOT NULL, description TEXT, enabled BOOLEAN NOT NULL,
                disabled_reason TEXT, generation INTEGER NOT NULL, previous_until TEXT,
                deleted BOOLEAN NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL, version INTEGER NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS webhook_payments (
                payment_id TEXT PRIMARY KEY, order_id TEXT NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS webhook_deliveries (
                id TEXT PRIMARY KEY, position BIGINT NOT NULL, event_id TEXT NOT NULL,
                endpoint_id TEXT NOT NULL, order_key TEXT NOT NULL, type TEXT NOT NULL,
                kind TEXT NOT NULL, stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL,
                created_at TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
                next_attempt_at TEXT, lease_until TEXT, first_attempt_at TEXT,
                last_attempt_at TEXT, last_status_code INTEGER, last_error TEXT,
                delivered_at TEXT)""",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_due"
            " ON webhook_deliveries (status, next_attempt_at)",
            # The queue alone: the dispatcher's look stays small however many were delivered.
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_waiting"
            " ON webhook_deliveries (endpoint_id, order_key, position)"
            " WHERE status IN ('pending', 'sending')",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_in_order"
            " ON webhook_deliveries (endpoint_id, order_key, position)",
            "CREATE INDEX IF NOT EXISTS webhook_deliveries_of_endpoint"
            " ON webhook_deliveries (endpoint_id, position)",
            """CREATE TABLE IF NOT EXISTS webhook_decided (
                endpoint_id TEXT PRIMARY KEY, through BIGINT NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS webhook_attempts (
                delivery_id TEXT NOT NULL, number INTEGER NOT NULL, started_at TEXT NOT NULL,
                duration_ms INTEGER NOT NULL, status_code INTEGER, error TEXT,
                outcome TEXT NOT NULL, PRIMARY KEY (delivery_id, number))""",
        ]

    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        endpoints = {
            row["id"]: EndpointRow(
                **{**row, "enabled": bool(row["enabled"]), "deleted": bool(row["deleted"])}
            )
            for row in txn.all("SELECT * FROM webhook_endpoints")
        }
        payments = _payments_of(txn, batch)
        decided = {row["endpoint_id"]: int(row["through"]) for row in txn.all(SELECT_DECIDED)}
        touched: dict[str, EndpointRow] = {}
        new_payments: list[dict[str, str]] = []
        deliveries: list[dict[str, Any]] = []
        settled: list[tuple[str, dict[str, Any]]] = []
        for envelope in batch:
            kind, event = envelope.kind, envelope.event
            if kind in ENDPOINT_EVENTS:
                before = endpoints.get(str(event.originator_id))
                was_enabled = before is not None and before.enabled
                row = _evolve(before, envelope)
                endpoints[row.id] = touched[row.id] = row
                if kind == "EndpointDeleted":
                    settled.append((GIVE_UP_DELETED, {"endpoint": row.id}))
                elif row.enabled and not was_enabled and kind == "EndpointChanged":
                    settled.append((RESTART_WINDOW, {"endpoint": row.id}))
            elif kind == "PaymentCreated":
                payments[str(event.originator_id)] = str(event.order_id)
                new_payments.append(
                    {"payment_id": str(event.originator_id), "order_id": str(event.order_id)}
                )
            if kind in EVENT_TYPES:
                deliveries += [
                    d
                    for d in _deliveries(envelope, endpoints.values(), payments)
                    if d["position"] > decided.get(d["endpoint_id"], 0)  # not on a rebuild
                ]
        txn.executemany(UPSERT_ENDPOINT, [asdict(row) for row in touched.values()])
        txn.executemany(INSERT_PAYMENT, new_payments)
        txn.executemany(INSERT_DELIVERY, deliveries)
        if batch:
            through = batch[-1].position
            txn.executemany(
                UPSERT_DECIDED,
                [
                    {"endpoint_id": e, "through": through}
                    for e in endpoints
                    if through > decided.get(e, 0)
                ],
            )
        for statement, params in settled:  # after the inserts: they apply to those too
            txn.execute(statement, params)


def _payments_of(txn: Txn, batch: Sequence[Envelope]) -> dict[str, str]:
    ids = sorted({str(e.event.originator_id) for e in batch if isinstance(e.event, Payment.Event)})
    return {
        row["payment_id"]: row["order_id"]
        for row in txn.rows_in("SELECT * FROM webhook_payments", "payment_id", ids)
    }


def _deliveries(
    envelope: Envelope, endpoints: Any, payments: dict[str, str]
) -> list[dict[str, Any]]:
    event = envelope.event
    public_type = EVENT_TYPES[envelope.kind]
    is_payment = isinstance(event, Payment.Event)
    stream_id = str(event.originator_id)
    order_key = payments.get(stream_id, stream_id) if is_payment else stream_id
    return [
        {
            "id": delivery_id(endpoint.id, envelope.position),
            "position": envelope.position,
            "event_id": event_id(envelope.position),
            "endpoint_id": endpoint.id,
            "order_key": order_key,
            "type": public_type,
            "kind": "payment" if is_payment else "order",
            "stream_id": stream_id,
            "stream_version": event.originator_version,
            "created_at": iso(event.timestamp),
        }
        for endpoint in endpoints
        if endpoint.wants(public_type)
    ]


def _evolve(row: EndpointRow | None, envelope: Envelope) -> EndpointRow:
    """The endpoint's row after one of its events."""
    event, kind = envelope.event, envelope.kind
    at = str(iso(event.timestamp))
    if kind == "EndpointRegistered":
        return EndpointRow(
            id=str(event.originator_id),
            position=envelope.position,
            url=event.url,
            events=json.dumps(list(event.events)),
            description=event.description,
            enabled=True,
            disabled_reason=None,
            generation=1,
            previous_until=None,
            deleted=False,
            created_by=event.actor.id,
            created_at=at,
            updated_at=at,
            version=event.originator_version,
        )
    assert row is not None, f"{kind} before its endpoint was registered"
    row.updated_at, row.version = at, event.originator_version
    if kind == "EndpointChanged":
        if event.enabled and not row.enabled:
            row.disabled_reason = None
        row.url, row.events = event.url, json.dumps(list(event.events))
        row.description, row.enabled = event.description, bool(event.enabled)
    elif kind == "EndpointDisabled":
        row.enabled, row.disabled_reason = False, event.reason
    elif kind == "SecretRotated":
        row.generation, row.previous_until = event.generation, iso(event.previous_until)
    elif kind == "EndpointDeleted":
        row.deleted, row.enabled = True, False
    return row


def endpoint_row(endpoint: WebhookEndpoint, position: int = 0) -> dict[str, Any]:
    """The ``webhook_endpoints`` row of an endpoint as saved (the API answers a command
    with it, exactly as the read model will show it)."""
    return asdict(
        EndpointRow(
            id=str(endpoint.id),
            position=position,
            url=endpoint.url,
            events=json.dumps(list(endpoint.events)),
            description=endpoint.description,
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            generation=endpoint.generation,
            previous_until=iso(endpoint.previous_until),
            deleted=endpoint.deleted,
            created_by=endpoint.created_by,
            created_at=str(iso(endpoint.created_at)),
            updated_at=str(iso(endpoint.updated_at)),
            version=endpoint.version,
        )
    )
