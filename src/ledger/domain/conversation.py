"""The Conversation aggregate: the messages of one order's parties (and of staff).

Messages are an aggregate of their own, not events on the Order, for three reasons:

- an order's ``version`` is its ``ETag``: a message is not a change of the order, and must
  not make a client's ``If-Match`` on the next command fail;
- a conversation may run to hundreds of messages, and every order command replays the
  order: its story stays bounded (``Order.MAX_CANCELLATION_REQUESTS``);
- a message posted while the freelancer delivers is no race to decide again.

The id is derived from the order's (``conversation_id_for``), as a payment's is, so each
order has one conversation, and the timeline reads the three streams together. Files are not
stored: an attachment is a link with its name, size and type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger.actors import Actor
from ledger.domain.values import check_text
from ledger.errors import ValidationFailed

CONVERSATION_NAMESPACE: Final = UUID("8a3e1c52-6b0f-4d7e-a2c9-5f41d3b7e610")
MAX_MESSAGE = 5_000
MAX_ATTACHMENTS = 10
MAX_NAME = 255
MAX_URL = 2_048
MAX_SIZE = 10 * 1024**3
"""The largest size an attachment may declare, in bytes (10 GiB)."""
MAX_CONTENT_TYPE = 255


def conversation_id_for(order_id: UUID) -> UUID:
    """The one conversation id an order can ever have."""
    return uuid5(CONVERSATION_NAMESPACE, f"conversation:{order_id}")


def check_attachments(attachments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The attachments as stored: ``name``, ``url`` (http or https), ``size`` (bytes) and
    ``contentType`` (``type/subtype``), at most ``MAX_ATTACHMENTS``.

    Raises: ValidationFailed, naming the attachment and field at fault.
    """
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValidationFailed(f"at most {MAX_ATTACHMENTS} attachments", field="attachments")
    kept = []
    for n, item in enumerate(attachments):
        where = f"attachments[{n}]"
        name = check_text(item.get("name"), f"{where}.name", max_length=MAX_NAME, single_line=True)
        url = check_text(item.get("url"), f"{where}.url", max_length=MAX_URL, single_line=True)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or not url.isascii():
            raise ValidationFailed(f"{where}.url must be an http(s) URL", field=f"{where}.url")
        size = item.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
            raise ValidationFailed(
                f"{where}.size must be a whole number of bytes, 0 to {MAX_SIZE}",
                field=f"{where}.size",
            )
        kind = check_text(
            item.get("contentType"), f"{where}.contentType", max_length=MAX_CONTENT_TYPE,
            single_line=True,
        )  # fmt: skip
        major, slash, minor = kind.partition("/")
        if not (slash and major.strip() and minor.strip()) or " " in kind:
            raise ValidationFailed(
                f"{where}.contentType must be type/subtype", field=f"{where}.contentType"
            )
        kept.append({"name": name, "url": url, "size": size, "contentType": kind})
    return kept


class Conversation(Aggregate):
    """One order's messages, oldest first."""

    @event("ConversationOpened")
    def __init__(self, conversation_id: UUID, order_id: UUID, timestamp: datetime) -> None:
        self.order_id = order_id
        self.messages = 0
        self.last: dict[str, Any] | None = None
        """The latest message, as posted (what a command answers with)."""

    @staticmethod
    def create_id(conversation_id: UUID) -> UUID:
        return conversation_id

    @classmethod
    def open(cls, order_id: UUID, timestamp: datetime) -> Conversation:
        return cls(
            conversation_id=conversation_id_for(order_id), order_id=order_id, timestamp=timestamp
        )

    def post(
        self,
        message_id: UUID,
        text: str,
        attachments: Sequence[Mapping[str, Any]],
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        """Raises: ValidationFailed (the text or an attachment)."""
        check_text(text, "text", max_length=MAX_MESSAGE)
        kept = check_attachments(attachments)
        self._posted(message_id, self.order_id, text, kept, actor, timestamp)

    @event("MessagePosted")
    def _posted(
        self,
        message_id: UUID,
        order_id: UUID,
        text: str,
        attachments: list[dict[str, Any]],
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        """``order_id`` rides along so readers (notifications) need not look it up."""
        self.messages += 1
        self.last = {
            "id": message_id,
            "text": text,
            "attachments": attachments,
            "actor": actor,
            "at": timestamp,
        }
