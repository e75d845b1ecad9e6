"""Queries of the read models, answering in the shapes of API.md (camelCase, MAD decimals).

Lists are newest first, ordered by the position of each item's first event (unique and
increasing), and paged with ``limit`` and ``startingAfter``: the cursor is looked up in the
same filtered list, so a cursor from another list is refused rather than silently skipping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.domain.values import OrderStatus, PaymentStatus
from ledger.errors import InvalidCursor, ValidationFailed
from ledger.money import CURRENCY, from_centimes
from projections.db import Database, Row

MAX_LIMIT = 100
Filters = dict[str, tuple[str, Any]]
"""Column filters: name → (SQL condition with ``:name``, value); ``None`` values are ignored."""


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    has_more: bool

    def as_api(self) -> dict[str, Any]:
        return {"data": self.data, "hasMore": self.has_more}


class ReadModels:
    """Every query the API answers from the read models."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- orders -----------------------------------------------------------------------------

    def order(self, order_id: str) -> dict[str, Any] | None:
        return self._one("orders", order_id, order_view)

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
        _check_choice(status, OrderStatus, "status")
        filters: Filters = {
            "status": ("status = :status", status),
            "client_id": ("user_id = :client_id", client_id),
            "freelancer_id": ("freelancer_id = :freelancer_id", freelancer_id),
            "party_id": ("(user_id = :party_id OR freelancer_id = :party_id)", party_id),
        }
        return self._page("orders", filters, limit, starting_after, order_view)

    def order_history(self, order_id: str) -> list[dict[str, Any]]:
        rows = self.db.read(
            "SELECT * FROM order_history WHERE order_id = :id ORDER BY version", {"id": order_id}
        )
        return [history_view(row) for row in rows]

    # -- payments ---------------------------------------------------------------------------

    def payment(self, payment_id: str) -> dict[str, Any] | None:
        return self._one("payments", payment_id, payment_view)

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
        _check_choice(status, PaymentStatus, "status")
        filters: Filters = {
            "status": ("status = :status", status),
            "order_id": ("order_id = :order_id", order_id),
            "transaction_id": ("transaction_id = :transaction_id", transaction_id),
            "party_id": ("(client_id = :party_id OR freelancer_id = :party_id)", party_id),
        }
        return self._page("payments", filters, limit, starting_after, payment_view)

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
        return self._one("gigs", gig_id, gig_view)

    def gigs(
        self,
        *,
        freelancer_id: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page:
        filters: Filters = {"freelancer_id": ("freelancer_id = :freelancer_id", freelancer_id)}
        return self._page("gigs", filters, limit, starting_after, gig_view)

    # -- plumbing ---------------------------------------------------------------------------

    def _one(
        self, table: str, item_id: str, view: Callable[[Row], dict[str, Any]]
    ) -> dict[str, Any] | None:
        rows = self.db.read(f"SELECT * FROM {table} WHERE id = :id", {"id": item_id})
        return view(rows[0]) if rows else None

    def _page(
        self,
        table: str,
        filters: Filters,
        limit: int,
        starting_after: str | None,
        view: Callable[[Row], dict[str, Any]],
    ) -> Page:
        """Raises: ValidationFailed (limit out of range), InvalidCursor."""
        if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed(f"limit must be from 1 to {MAX_LIMIT}", field="limit")
        params = {name: value for name, (_, value) in filters.items() if value is not None}
        where = [condition for name, (condition, _) in filters.items() if name in params]
        if starting_after is not None:
            cursor = self.db.read(
                f"SELECT position FROM {table} WHERE {' AND '.join([*where, 'id = :cursor'])}",
                {**params, "cursor": starting_after},
            )
            if not cursor:
                raise InvalidCursor(starting_after)
            where.append("position < :before")
            params["before"] = cursor[0]["position"]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.read(
            f"SELECT * FROM {table} {clause} ORDER BY position DESC LIMIT :limit",
            {**params, "limit": limit + 1},
        )
        return Page([view(row) for row in rows[:limit]], has_more=len(rows) > limit)


def _check_choice(value: str | None, choices: Any, field: str) -> None:
    if value is not None and value not in {str(choice) for choice in choices}:
        allowed = ", ".join(str(choice) for choice in choices)
        raise ValidationFailed(f"{field} must be one of {allowed}", field=field)


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
