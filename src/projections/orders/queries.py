"""Queries of order history: one order, a page of orders, an order's history, and the
candidates of the clock's deadlines (which the write side decides again, one by one)."""

from __future__ import annotations

import json
from typing import Any

from ledger.domain.order import WORKING_STAGES
from ledger.domain.values import OrderStatus, Stage
from ledger.money import from_centimes
from projections.db import Database, Row
from projections.gigs.queries import package_view
from projections.paging import Filters, Page, check_choice, one, page

_WORKING_STAGES = ", ".join(f"'{stage}'" for stage in WORKING_STAGES)
"""The stages of an order not delivered yet, as SQL literals (values of ``Stage``)."""


class OrderQueries:
    """The ``orders`` and ``order_history`` tables, as the API shows them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, order_id: str) -> dict[str, Any] | None:
        return one(self.db, "orders", order_id, order_view)

    def row(self, order_id: str) -> Row | None:
        """The raw row (parties and status), for the API's access checks."""
        rows = self.db.read("SELECT * FROM orders WHERE id = :id", {"id": order_id})
        return rows[0] if rows else None

    def page(
        self,
        *,
        status: str | None = None,
        client_id: str | None = None,
        freelancer_id: str | None = None,
        party_id: str | None = None,
        stage: str | None = None,
        matching: str | None = None,
        placed_from: str | None = None,
        placed_before: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page:
        """Orders newest first. ``matching`` is any id an order answers to: its own, its
        gig's, a party's, its payment's or the gateway's transaction id (support's search);
        ``placed_from``/``placed_before`` bound ``createdAt`` (ISO UTC text).

        Raises: ValidationFailed (status, stage, limit), InvalidCursor.
        """
        check_choice(status, OrderStatus, "status")
        check_choice(stage, Stage, "stage")
        filters: Filters = {
            "status": ("status = :status", status),
            "stage": ("stage = :stage", stage),
            "client_id": ("user_id = :client_id", client_id),
            "freelancer_id": ("freelancer_id = :freelancer_id", freelancer_id),
            "party_id": ("(user_id = :party_id OR freelancer_id = :party_id)", party_id),
            "matching": (
                "(id = :matching OR gig_id = :matching OR user_id = :matching"
                " OR freelancer_id = :matching OR id IN (SELECT order_id FROM payments"
                " WHERE id = :matching OR transaction_id = :matching))",
                matching,
            ),
            "placed_from": ("created_at >= :placed_from", placed_from),
            "placed_before": ("created_at < :placed_before", placed_before),
        }
        return page(self.db, "orders", filters, limit, starting_after, order_view)

    def counts(self) -> dict[tuple[str, str], int]:
        """How many orders stand at each (status, stage) now."""
        rows = self.db.read(
            "SELECT status, stage, COUNT(*) AS n FROM orders GROUP BY status, stage"
        )
        return {(row["status"], row["stage"]): int(row["n"]) for row in rows}

    def placed_per_day(self, since: str) -> dict[str, int]:
        """Orders placed per UTC day (``YYYY-MM-DD``) from the day ``since`` starts."""
        rows = self.db.read(
            "SELECT SUBSTR(created_at, 1, 10) AS day, COUNT(*) AS n FROM orders"
            " WHERE created_at >= :since GROUP BY SUBSTR(created_at, 1, 10)",
            {"since": since},
        )
        return {row["day"]: int(row["n"]) for row in rows}

    def history(self, order_id: str) -> list[dict[str, Any]]:
        """The order's whole history, oldest first."""
        rows = self.db.read(
            "SELECT * FROM order_history WHERE order_id = :id ORDER BY version", {"id": order_id}
        )
        return [history_view(row) for row in rows]

    def history_page(self, order_id: str, after: int = 0, limit: int = 100) -> dict[str, Any]:
        """``{"data": [...], "nextAfter"}``: up to ``limit`` entries of the order's history
        after the order's version ``after``, oldest first; ``nextAfter`` is the last
        entry's version when more follow, else ``None``.

        Paged by the order's version rather than by ``startingAfter`` and an item id: the
        entries have no id of their own, the table is keyed ``(order_id, version)`` (each
        page one range of that index), and a version stays a valid cursor as the order
        goes on. It is the ``after``/``nextAfter`` style of the timeline and audit feed.
        """
        rows = self.db.read(
            "SELECT * FROM order_history WHERE order_id = :id AND version > :after"
            " ORDER BY version LIMIT :limit",
            {"id": order_id, "after": after, "limit": limit + 1},
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "data": [history_view(row) for row in rows],
            "nextAfter": rows[-1]["version"] if more else None,
        }

    # deadlines: candidates only; the write side decides each one again

    def to_auto_complete(self, delivered_before: str, limit: int = 500) -> list[str]:
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

    def past_due(self, now: str, limit: int = 500) -> list[str]:
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
        "extension": None if row["extension"] is None else json.loads(row["extension"]),
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
