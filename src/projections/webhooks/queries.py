"""Queries of webhook endpoints and their deliveries, as the API shows them, and the figures
``/metrics`` reads (deliveries by status, the queue, its oldest)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.clock import iso
from projections.db import Database, Row
from projections.paging import Page, one, page
from projections.webhooks.projection import PENDING


@dataclass(frozen=True)
class DeliveryStats:
    by_status: dict[str, int]
    attempts_by_outcome: dict[str, int]
    queued: int
    """Deliveries not yet made (pending, or being sent)."""
    oldest_queued_at: datetime | None


class WebhookQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    def endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        found = one(self.db, "webhook_endpoints", endpoint_id, endpoint_view)
        return None if found is None or found["deleted"] else found

    def endpoints(self, limit: int, starting_after: str | None) -> Page:
        filters = {"live": ("deleted = :live", False)}
        return page(self.db, "webhook_endpoints", filters, limit, starting_after, endpoint_view)

    def deliveries(self, endpoint_id: str, limit: int, starting_after: str | None) -> Page:
        filters = {"endpoint": ("endpoint_id = :endpoint", endpoint_id)}
        return page(self.db, "webhook_deliveries", filters, limit, starting_after, self._view)

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        return one(self.db, "webhook_deliveries", delivery_id, self._view)

    def _view(self, row: Row) -> dict[str, Any]:
        attempts = self.db.read(
            "SELECT * FROM webhook_attempts WHERE delivery_id = :id ORDER BY number",
            {"id": row["id"]},
        )
        return delivery_view(row, attempts)

    def retry(self, delivery_id: str, now: datetime) -> bool:
        """Send a delivery again at once, whatever it came to (a delivered one is sent once
        more: a receiver deduplicates on the event id). Whether there is such a delivery."""
        # One being sent right now (locked on PostgreSQL, leased on SQLite) is left alone:
        # waiting for its lock would hold this request for the whole send.
        which = "SELECT id FROM webhook_deliveries WHERE id = :id AND status <> 'sending'"
        if self.db.postgres:
            which += " FOR UPDATE SKIP LOCKED"
        return bool(
            self.db.statement(
                "UPDATE webhook_deliveries SET status = :pending, next_attempt_at = :now,"
                " lease_until = NULL, first_attempt_at = NULL"  # 3 days from the retry on
                f" WHERE id IN ({which})",
                {"pending": PENDING, "now": iso(now), "id": delivery_id},
            )
        )

    def stats(self) -> DeliveryStats:
        by_status = {
            row["status"]: int(row["n"])
            for row in self.db.read(
                "SELECT status, COUNT(*) AS n FROM webhook_deliveries GROUP BY status"
            )
        }
        outcomes = {
            row["outcome"]: int(row["n"])
            for row in self.db.read(
                "SELECT outcome, COUNT(*) AS n FROM webhook_attempts GROUP BY outcome"
            )
        }
        oldest = self.db.read(
            "SELECT MIN(created_at) AS at FROM webhook_deliveries"
            " WHERE status IN ('pending', 'sending')"
        )[0]["at"]
        queued = by_status.get("pending", 0) + by_status.get("sending", 0)
        at = None if oldest is None else datetime.fromisoformat(str(oldest).replace("Z", "+00:00"))
        return DeliveryStats(by_status, outcomes, queued, at)


def endpoint_view(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": json.loads(row["events"]),
        "description": row["description"],
        "enabled": bool(row["enabled"]),
        "disabledReason": row["disabled_reason"],
        "secretGeneration": row["generation"],
        "previousSecretUntil": row["previous_until"],
        "createdBy": row["created_by"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "version": row["version"],
        "deleted": bool(row["deleted"]),
    }


def delivery_view(row: Row, attempts: list[Row]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "endpointId": row["endpoint_id"],
        "eventId": row["event_id"],
        "type": row["type"],
        "position": row["position"],
        "orderId": row["order_key"],
        "status": "pending" if row["status"] == "sending" else row["status"],
        "attempts": [
            {
                "number": attempt["number"],
                "at": attempt["started_at"],
                "outcome": attempt["outcome"],
                "statusCode": attempt["status_code"],
                "durationMs": attempt["duration_ms"],
                "error": attempt["error"],
            }
            for attempt in attempts
        ],
        "nextAttemptAt": row["next_attempt_at"] if row["status"] == PENDING else None,
        "deliveredAt": row["delivered_at"],
        "createdAt": row["created_at"],
    }
