"""Queries of the read models, answering in the shapes of docs/api.md (camelCase, MAD decimals).
Lists are paged as ``projections.paging`` says."""

from __future__ import annotations

import json
from typing import Any

from ledger.domain.order import WORKING_STAGES
from ledger.domain.values import OrderStatus, PaymentStatus
from ledger.money import CURRENCY, from_centimes
from projections.db import Database, Row
from projections.escrow.queries import EscrowQueries
from projections.notifications.queries import NotificationQueries
from projections.paging import Filters, Page, check_choice, one, page

_WORKING_STAGES = ", ".join(f"'{stage}'" for stage in WORKING_STAGES)
"""The stages of an order not delivered yet, as SQL literals (values of ``Stage``)."""


class ReadModels:
    """Every query the API answers from the read models."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.escrow = EscrowQueries(db)
        """The escrow ledger's books: accounts, entries, balances."""
        self.notifications = NotificationQueries(db)
        """Each user's own notifications."""

    # -- orders -----------------------------------------------------------------------------

    def order(self, order_id: str) -> dict[str, Any] | None:
        return one(self.db, "orders", order_id, order_view)

    def order_row(self, order_id: str) -> Row | None:
        """The raw row (parties and status), for the API's access checks."""
        rows = self.db.read("SELECT * FROM orders WHERE id = :id", {"id": order_id})
        return rows[0] if rows else None

    def orders(
        self,
        *,
        status: str | None = None,
        client_id: str | None = None,
        freelancer_id: str | None = None,
        party_id: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page:
        check_choice(status, OrderStatus, "status")
        filters: Filters = {
            "status": ("status = :status", status),
            "client_id": ("user_id = :client_id", client_id),
            "freelancer_id": ("freelancer_id = :freelancer_id", freelancer_id),
            "party_id": ("(user_id = :party_id OR freelancer_id = :party_id)", party_id),
        }
        return page(self.db, "orders", filters, limit, starting_after, order_view)

    def order_history(self, order_id: str) -> list[dict[str, Any]]:
        rows = self.db.read(
            "SELECT * FROM order_history WHERE order_id = :id ORDER BY version", {"id": order_id}
        )
        return [history_view(row) for row in rows]

    # -- deadlines: candidates only; the write side decides each one again ------------------

    def orders_to_auto_complete(self, delivered_before: str, limit: int = 500) -> list[str]:
        """Orders delivered at or before an ISO time and still waiting for the client,
        oldest delivery first."""
        return self._ids(
            "SELECT id FROM orders WHERE stage = 'delivered' AND delivered_at <= :before"
            " ORDER BY delivered_at LIMIT :limit",
            delivered_before,
            limit,
        )

    def cancellations_to_accept(self, requested_before: str, limit: int = 500) -> list[str]:
        """Orders whose cancellation request, made at or before an ISO time, is still
        unanswered, oldest request first."""
        return self._ids(
            "SELECT id FROM orders WHERE stage = 'cancellation_requested'"
            " AND cancellation_requested_at <= :before"
            " ORDER BY cancellation_requested_at LIMIT :limit",
            requested_before,
            limit,
        )

    def orders_past_due(self, now: str, limit: int = 500) -> list[str]:
        """Processing orders never delivered whose ``dueAt`` is before ``now`` (an ISO time)
        and that are not marked late yet, earliest due first."""
        return self._ids(
            "SELECT id FROM orders WHERE status = 'processing' AND marked_late_at IS NULL"
            " AND delivered_at IS NULL AND due_at < :before"
            f" AND stage IN ({_WORKING_STAGES})"
            " ORDER BY due_at LIMIT :limit",
            now,
            limit,
        )

    def _ids(self, sql: str, before: str, limit: int) -> list[str]:
        return [row["id"] for row in self.db.read(sql, {"before": before, "limit": limit})]

    # -- payments ---------------------------------------------------------------------------

    def payment(self, payment_id: str) -> dict[str, Any] | None:
        return one(self.db, "payments", payment_id, payment_view)

    def payment_row(self, payment_id: str) -> Row | None:
        rows = self.db.read("SELECT * FROM payments WHERE id = :id", {"id": payment_id})
        return rows[0] if rows else None

    def payment_of_order(self, order_id: str) -> dict[str, Any] | None:
        rows = self.db.read("SELECT * FROM payments WHERE order_id = :id", {"id": order_id})
        return payment_view(rows[0]) if rows else None

    def payments(
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

    def pending_payment_ids(self, created_before: str, limit: int = 500) -> list[str]:
        """Payments the read model still shows pending, created before an ISO time, oldest
        first: candidates for expiry (the write side re-checks each one)."""
        rows = self.db.read(
            "SELECT id FROM payments WHERE status = 'pending' AND created_at < :before"
            " ORDER BY position LIMIT :limit",
            {"before": created_before, "limit": limit},
        )
        return [row["id"] for row in rows]

    # -- gigs -------------------------------------------------------------------------------

    def gig(self, gig_id: str) -> dict[str, Any] | None:
        return one(self.db, "gigs", gig_id, gig_view)

    def gigs(
        self,
        *,
        freelancer_id: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page:
        filters: Filters = {"freelancer_id": ("freelancer_id = :freelancer_id", freelancer_id)}
        return page(self.db, "gigs", filters, limit, starting_after, gig_view)


def package_view(package: dict[str, Any]) -> dict[str, Any]:
    return {
        "packageId": package["package_id"],
        "price": from_centimes(package["price"]),
        "deliveryDays": package["delivery_days"],
        "revisions": package["revisions"],
        "description": package["description"],
    }


def order_view(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "userId": row["user_id"],
        "gigId": row["gig_id"],
        "packageId": row["package_id"],
        "freelancerId": row["freelancer_id"],
        "status": row["status"],
        "stage": row["stage"],
        "totalAmount": from_centimes(row["total_amount"]),
        "currency": row["currency"],
        "package": package_view(json.loads(row["package"])),
        "revisionsUsed": row["revisions_used"],
        "requirements": row["requirements"],
        "dueAt": row["due_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "version": row["version"],
    }


def history_view(row: Row) -> dict[str, Any]:
    return {
        "status": row["status"],
        "stage": row["stage"],
        "event": row["event"],
        "at": row["at"],
        "actor": {"id": row["actor_id"], "role": row["actor_role"]},
    }


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
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "version": row["version"],
    }


def _checkout(stored: str | None) -> dict[str, str] | None:
    if stored is None:
        return None
    checkout = json.loads(stored)
    return {"tokenId": checkout["token_id"], "paymentUrl": checkout["payment_url"]}


def gig_view(row: Row) -> dict[str, Any]:
    count = int(row["rating_count"])
    average = round(int(row["rating_sum"]) / count, 2) if count else None
    return {
        "id": row["id"],
        "freelancerId": row["freelancer_id"],
        "title": row["title"],
        "currency": row["currency"],
        "packages": [package_view(p) for p in json.loads(row["packages"])],
        "rating": {"average": average, "count": count},
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }
