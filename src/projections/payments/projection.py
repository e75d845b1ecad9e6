"""Payment records: each payment as the API shows it, with its refunds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import Transcoder

from ledger.clock import iso
from ledger.domain.payment import Payment
from projections.base import Envelope, Projection, topics_of
from projections.db import Txn
from projections.states import Evolver, StateCodec

UPSERT_PAYMENT = """
INSERT INTO payments (id, position, order_id, client_id, freelancer_id, status, amount,
    currency, payment_method, transaction_id, failure_reason, refunded_amount, refunds,
    checkout, cash_code, card, expires_at, created_at, updated_at, version, state)
VALUES (:id, :position, :order_id, :client_id, :freelancer_id, :status, :amount, :currency,
    :payment_method, :transaction_id, :failure_reason, :refunded_amount, :refunds,
    :checkout, :cash_code, :card, :expires_at, :created_at, :updated_at, :version, :state)
ON CONFLICT (id) DO UPDATE SET status = excluded.status,
    transaction_id = excluded.transaction_id, failure_reason = excluded.failure_reason,
    refunded_amount = excluded.refunded_amount, refunds = excluded.refunds,
    checkout = excluded.checkout, cash_code = excluded.cash_code, card = excluded.card,
    updated_at = excluded.updated_at, version = excluded.version, state = excluded.state
"""


class PaymentRecords(Projection):
    """``payments``: by order, by status, by transaction id; newest first by ``position``."""

    name: ClassVar[str] = "payments"
    tables: ClassVar[tuple[str, ...]] = ("payments",)
    version: ClassVar[int] = 4
    """2: the checkout column; 3: refund status and reference; 4: the CashPlus code, the
    paying card, the expiry."""

    def __init__(self, transcoder: Transcoder) -> None:
        self.codec = StateCodec(Payment, transcoder)

    @property
    def topics(self) -> Sequence[str]:
        return topics_of(Payment)

    def schema(self) -> Sequence[str]:
        return [
            """CREATE TABLE IF NOT EXISTS payments (
                id TEXT PRIMARY KEY, position BIGINT NOT NULL, order_id TEXT NOT NULL UNIQUE,
                client_id TEXT NOT NULL, freelancer_id TEXT NOT NULL, status TEXT NOT NULL,
                amount BIGINT NOT NULL, currency TEXT NOT NULL, payment_method TEXT NOT NULL,
                transaction_id TEXT, failure_reason TEXT, refunded_amount BIGINT NOT NULL,
                refunds TEXT NOT NULL, checkout TEXT, cash_code TEXT, card TEXT,
                expires_at TEXT, created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                version INTEGER NOT NULL, state TEXT NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS payments_by_position ON payments (position)",
            "CREATE INDEX IF NOT EXISTS payments_by_status ON payments (status, position)",
            "CREATE INDEX IF NOT EXISTS payments_by_client ON payments (client_id, position)",
            "CREATE INDEX IF NOT EXISTS payments_by_freelancer"
            " ON payments (freelancer_id, position)",
            "CREATE INDEX IF NOT EXISTS payments_by_transaction ON payments (transaction_id)",
        ]

    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        evolver = Evolver(self.codec, txn, "payments")
        created: dict[UUID, int] = {}
        for envelope, payment in evolver.apply_all(batch):
            if payment.version == 1:
                created[payment.id] = envelope.position
        rows = [
            {**payment_row(p, created.get(p.id, 0)), "state": self.codec.dump(p)}
            for p in evolver.touched()
        ]
        txn.executemany(UPSERT_PAYMENT, rows)


def payment_row(payment: Payment, position: int = 0) -> dict[str, Any]:
    """The ``payments`` row of a payment (without ``state``), shared with the API."""
    return {
        "id": str(payment.id),
        "position": position,
        "order_id": str(payment.order_id),
        "client_id": payment.client_id,
        "freelancer_id": payment.freelancer_id,
        "status": str(payment.status),
        "amount": payment.amount,
        "currency": payment.currency,
        "payment_method": payment.payment_method,
        "transaction_id": payment.transaction_id,
        "failure_reason": payment.failure_reason,
        "refunded_amount": payment.refunded,
        "refunds": json.dumps(
            [_refund(refund, "completed") for refund in payment.refunds]
            + [_refund(request, "requested") for request in payment.requested_refunds]
        ),
        "checkout": None if payment.checkout is None else json.dumps(payment.checkout),
        "cash_code": payment.cash_code,
        "card": None if payment.card is None else json.dumps(payment.card),
        "expires_at": iso(payment.expires_at),
        "created_at": iso(payment.created_on),
        "updated_at": iso(payment.modified_on),
        "version": payment.version,
    }


def _refund(refund: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "amount": refund["amount"],
        "reason": refund["reason"],
        "at": iso(refund["at"]),
        "status": status,
        "reference": refund.get("reference"),
    }
