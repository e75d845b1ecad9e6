"""``order_messages``: every message of every order's conversation, in log order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

from ledger.clock import iso
from ledger.domain.conversation import Conversation
from projections.base import Envelope, Projection, topics_named
from projections.db import Txn

INSERT_MESSAGE = """
INSERT INTO order_messages (id, position, order_id, author_id, author_role, text,
    attachments, created_at)
VALUES (:id, :position, :order_id, :author_id, :author_role, :text, :attachments, :created_at)
"""


class Messages(Projection):
    name: ClassVar[str] = "messages"
    tables: ClassVar[tuple[str, ...]] = ("order_messages",)

    @property
    def topics(self) -> Sequence[str]:
        return topics_named({"MessagePosted"}, Conversation)

    def schema(self) -> Sequence[str]:
        return [
            """CREATE TABLE IF NOT EXISTS order_messages (
                id TEXT PRIMARY KEY, position BIGINT NOT NULL UNIQUE, order_id TEXT NOT NULL,
                author_id TEXT NOT NULL, author_role TEXT NOT NULL, text TEXT NOT NULL,
                attachments TEXT NOT NULL, created_at TEXT NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS order_messages_by_order"
            " ON order_messages (order_id, position)",
        ]

    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        rows = [
            {
                "id": str(e.event.message_id),
                "position": e.position,
                "order_id": str(e.event.order_id),
                "author_id": e.event.actor.id,
                "author_role": e.event.actor.role,
                "text": e.event.text,
                "attachments": json.dumps(list(e.event.attachments)),
                "created_at": iso(e.event.timestamp),
            }
            for e in batch
        ]
        txn.executemany(INSERT_MESSAGE, rows)
