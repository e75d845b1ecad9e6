"""The Conversation aggregate's own rules: one per order, text and attachments checked."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from ledger.actors import Actor
from ledger.domain.conversation import (
    MAX_ATTACHMENTS,
    Conversation,
    check_attachments,
    conversation_id_for,
)
from ledger.errors import ValidationFailed

NOW = datetime(2026, 1, 5, tzinfo=UTC)
FILE = {
    "name": "a.pdf",
    "url": "https://f.example/a.pdf",
    "size": 10,
    "contentType": "application/pdf",
}


def test_one_conversation_per_order_and_messages_counted() -> None:
    order_id = uuid4()
    conversation = Conversation.open(order_id, NOW)
    assert conversation.id == conversation_id_for(order_id) == conversation_id_for(order_id)
    conversation.post(uuid4(), "Hi\tthere\nagain", [FILE], Actor("c-1", "client"), NOW)
    assert conversation.messages == 1 and conversation.last is not None
    assert conversation.last["attachments"] == [FILE]


@pytest.mark.parametrize(
    ("attachments", "field"),
    [
        ([FILE] * (MAX_ATTACHMENTS + 1), "attachments"),
        ([{**FILE, "url": "javascript:alert(1)"}], "attachments[0].url"),
        ([{**FILE, "url": "https://f.example/\u00e9"}], "attachments[0].url"),
        ([{**FILE, "size": True}], "attachments[0].size"),
        ([{**FILE, "contentType": "a b/c"}], "attachments[0].contentType"),
        ([FILE, {**FILE, "name": ""}], "attachments[1].name"),
    ],
)
def test_attachments_are_checked(attachments: list[dict[str, object]], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_attachments(attachments)
    assert refused.value.field == field
