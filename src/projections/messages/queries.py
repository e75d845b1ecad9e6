"""An order's messages, oldest first, paged with ``limit`` and ``startingAfter``."""

from __future__ import annotations

import json
from typing import Any

from ledger.clock import iso
from ledger.domain.conversation import Conversation
from ledger.errors import InvalidCursor, ValidationFailed
from projections.db import Database, Row
from projections.paging import MAX_LIMIT


class MessageQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    def page(self, order_id: str, limit: int, starting_after: str | None) -> dict[str, Any]:
        """``{"data", "hasMore"}``, the oldest first (a conversation reads from the top).

        Raises: ValidationFailed (limit), InvalidCursor (not a message of this order).
        """
        if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed(f"limit must be from 1 to {MAX_LIMIT}", field="limit")
        after = 0
        if starting_after is not None:
            found = self.db.read(
                "SELECT position FROM order_messages WHERE id = :id AND order_id = :order",
                {"id": starting_after, "order": order_id},
            )
            if not found:
                raise InvalidCursor(starting_after)
            after = int(found[0]["position"])
        rows = self.db.read(
            "SELECT * FROM order_messages WHERE order_id = :order AND position > :after"
            " ORDER BY position LIMIT :limit",
            {"order": order_id, "after": after, "limit": limit + 1},
        )
        return {"data": [message_view(r) for r in rows[:limit]], "hasMore": len(rows) > limit}


def message_view(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "orderId": row["order_id"],
        "author": {"id": row["author_id"], "role": row["author_role"]},
        "text": row["text"],
        "attachments": json.loads(row["attachments"]),
        "createdAt": row["created_at"],
    }


def message_answer(conversation: Conversation) -> dict[str, Any]:
    """The message a conversation was just given, exactly as the read model will show it."""
    posted = conversation.last
    assert posted is not None
    return message_view(
        {
            "id": str(posted["id"]),
            "order_id": str(conversation.order_id),
            "author_id": posted["actor"].id,
            "author_role": posted["actor"].role,
            "text": posted["text"],
            "attachments": json.dumps(posted["attachments"]),
            "created_at": iso(posted["at"]),
        }
    )
