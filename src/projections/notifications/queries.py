"""Queries of the notifications read model: a user's own notifications, newest first.

Every query takes the recipient: nobody lists, pages through or looks up a notification
that was not made for them (a cursor of someone else's is not an item of their list).
"""

from __future__ import annotations

from typing import Any

from projections.db import Database, Row
from projections.paging import Filters, Page, page


class NotificationQueries:
    """What a user reads of their notifications."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(
        self,
        recipient_id: str,
        *,
        unread: bool | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page:
        """``recipient_id``'s notifications, newest first; ``unread`` keeps the unread
        ones (``True``) or the read ones (``False``).

        Raises: ValidationFailed (limit), InvalidCursor.
        """
        filters: Filters = {
            "recipient_id": ("recipient_id = :recipient_id", recipient_id),
            "unread": ("read_at IS NULL" if unread else "read_at IS NOT NULL", unread),
        }
        return page(
            self.db,
            "notifications",
            filters,
            limit,
            starting_after,
            notification_view,
            cursor_in=["recipient_id"],  # read on its page, the cursor still leads on
        )

    def recipient_of(self, notification_id: str) -> str | None:
        """Who a notification was made for (``None``: no such notification)."""
        rows = self.db.read(
            "SELECT recipient_id FROM notifications WHERE id = :id", {"id": notification_id}
        )
        return str(rows[0]["recipient_id"]) if rows else None

    def one(self, recipient_id: str, notification_id: str) -> dict[str, Any] | None:
        """One of ``recipient_id``'s notifications (``None``: unknown, or someone else's)."""
        rows = self.db.read(
            "SELECT * FROM notifications WHERE id = :id AND recipient_id = :recipient_id",
            {"id": notification_id, "recipient_id": recipient_id},
        )
        return notification_view(rows[0]) if rows else None


def notification_view(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "type": row["type"],
        "orderId": row["order_id"],
        "message": row["message"],
        "createdAt": row["created_at"],
        "readAt": row["read_at"],
    }
