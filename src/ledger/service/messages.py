"""Message commands: the parties of an order (and support and admins, shown as staff) write
to each other during the order; nobody writes on a closed one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID, uuid4

from ledger import access
from ledger.actors import Actor, Caller
from ledger.domain.conversation import Conversation, conversation_id_for
from ledger.domain.order import Order
from ledger.domain.values import OrderStatus
from ledger.errors import Forbidden, InvalidTransition, NotFound
from ledger.service.base import Done, LedgerBase

CLOSED = (OrderStatus.COMPLETED, OrderStatus.CANCELLED)
STAFF_WRITERS = ("support", "admin")


class MessageCommands(LedgerBase):
    def post_message(
        self,
        caller: Caller,
        order_id: UUID,
        text: str,
        attachments: Sequence[Mapping[str, Any]] = (),
        message_id: UUID | None = None,
    ) -> Done[Conversation]:
        """Add a message to the order's conversation (opened by its first message).

        Raises:
            NotFound: no such order, or not the caller's to see.
            Forbidden: the caller reads it but may not write (an auditor).
            InvalidTransition: the order is completed or cancelled.
            ValidationFailed: the text or an attachment.
        """
        new_id = message_id or uuid4()

        def decide() -> list[Conversation]:
            order = self._order(order_id)
            actor = _author(caller, order)
            if order.status in CLOSED:
                raise InvalidTransition(f"order {order_id} is {order.status}: it takes no messages")
            now = self.clock()
            conversation = self._conversation(order_id) or Conversation.open(order_id, now)
            conversation.post(new_id, text, attachments, actor, now)
            return [conversation]

        return self._run(decide)

    def _conversation(self, order_id: UUID) -> Conversation | None:
        try:
            return self._load(Conversation, conversation_id_for(order_id))
        except NotFound:
            return None


def _author(caller: Caller, order: Order) -> Actor:
    """The capacity a message is written in: the order's client or freelancer, else staff.

    Raises: NotFound (a stranger), Forbidden (an auditor, who reads only).
    """
    access.require_visible(caller, order)
    if caller.id == order.client_id:
        return caller.acting_as("client")
    if caller.id == order.freelancer_id:
        return caller.acting_as("freelancer")
    for role in STAFF_WRITERS:
        if caller.has(role):
            return caller.acting_as(role)
    raise Forbidden("auditors read the messages but do not write them")
