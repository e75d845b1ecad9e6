"""Queries of payment records: one payment, an order's payment, a page of payments, and the
payments still pending past their expiry (candidates the write side decides again)."""

from __future__ import annotations

import json
from typing import Any

from ledger.domain.values import PaymentStatus
from ledger.money import CURRENCY, from_centimes
from projections.db import Database, Row
from projections.paging import Filters, Page, check_choice, one, page


class PaymentQueries:
    """The ``payments`` table, as the API shows it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, payment_id: str) -> dict[str, Any] | None:
        return one(self.db, "payments", payment_id, payment_view)

    def row(self, payment_id: str) -> Row | None:
        rows = self.db.read("SELECT * FROM payments WHERE id = :id", {"id": payment_id})
        return rows[0] if rows else None

    def of_order(self, order_id: str) -> dict[str, Any] | None:
        rows = self.db.read("SELECT * FROM payments WHERE order_id = :id", {"id": order_id})
        return payment_view(rows[0]) if rows else None

    def page(
        self,
        *,
        status: str | None = None,
        order_id: str | None = None,
        transaction_id: str | None = None,
        party_id: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page:
        check_choice(status, PaymentStatus, "status")
        filters: Filters = {
            "status": ("status = :status", status),
            "order_id": ("order_id = :order_id", order_id),
            "transaction_id": ("transaction_id = :transaction_id", transaction_id),
            "party_id": ("(client_id = :party_id OR freelancer_id = :party_id)", party_id),
        }
        return page(self.db, "payments", filters, limit, starting_after, payment_view)

    def expired_ids(self, now: str, unrecorded_before: str, limit: int = 500) -> list[str]:
        """Payments the read model still shows pending past their expiry at ``now`` (ISO),
        oldest first: candidates the write side decides again. A payment stored before its
        expiry was recorded counts as expired once created before ``unrecorded_before``."""
        rows = self.db.read(
            "SELECT id FROM payments WHERE status = 'pending' AND (expires_at <= :now"
            " OR (expires_at IS NULL AND created_at < :unrecorded_before))"
            " ORDER BY position LIMIT :limit",
            {"now": now, "unrecorded_before": unrecorded_before, "limit": limit},
        )
        return [row["id"] for row in rows]


def payment_view(row: Row) -> dict[str, Any]:
    refunds = [
        {
            "amount": from_centimes(r["amount"]),
            "currency": CURRENCY,
            "reason": r["reason"],
            "at": r["at"],
            "status": r["status"],
            "reference": r["reference"],
        }
        for r in json.loads(row["refunds"])
    ]
    return {
        "id": row["id"],
        "orderId": row["order_id"],
        "status": row["status"],
        "amount": from_centimes(row["amount"]),
        "currency": row["currency"],
        "paymentMethod": row["payment_method"],
        "transactionId": row["transaction_id"],
        "failureReason": row["failure_reason"],
        "refundedAmount": from_centimes(row["refunded_amount"]),
        "refunds": refunds,
        "checkout": _checkout(row["checkout"]),
        "card": None if row["card"] is None else json.loads(row["card"]),
        "cashplus": _cashplus(row),
        "expiresAt": row["expires_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "version": row["version"],
    }


def _checkout(stored: str | None) -> dict[str, str | None] | None:
    if stored is None:
        return None
    checkout = json.loads(stored)
    return {"tokenId": checkout["token_id"], "paymentUrl": checkout["payment_url"]}


def _cashplus(row: Row) -> dict[str, str] | None:
    """A CashPlus payment's code, and what the client does with it: pay, while the payment
    is pending; nothing, once it is settled."""
    code = row["cash_code"]
    if code is None:
        return None
    if row["status"] != PaymentStatus.PENDING:
        told = "was paid" if row["status"] == PaymentStatus.SUCCESS else "is no longer payable"
        return {"code": code, "instructions": f"This code {told}: nothing more to pay."}
    amount = f"{from_centimes(row['amount'])} {row['currency']}"
    until = row["expires_at"][:16].replace("T", " ") + " UTC" if row["expires_at"] else ""
    return {
        "code": code,
        "instructions": (
            f"Pay {amount} in cash at any CashPlus agency, quoting the code {code}"
            + (f", before {until}." if until else ".")
            + " The order starts once the agency's payment reaches the ledger."
        ),
    }
