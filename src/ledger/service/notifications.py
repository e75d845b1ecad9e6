"""Notification commands, on the user's ``Inbox``: their notification preference and the
notifications they read.

Everyone reaches only their own inbox: its id is derived from the caller's id, never taken
from the request. A notification id does come from the request, so marking one read also
needs who it was made for, which only the read model knows (``recipient_id``, looked up by
the edge): anything not made for the caller is answered as unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ledger.access import ORDER_CREATORS
from ledger.actors import Actor, Caller
from ledger.domain.inbox import Inbox, inbox_id_for
from ledger.errors import Forbidden, NotFound
from ledger.service.base import Done, LedgerBase, Unchanged

InboxAction = Callable[[Inbox, Actor, datetime], None]


@dataclass(frozen=True)
class Preferences:
    """What a user chose to be told (``GET /v1/me/preferences``)."""

    order_updates: bool


class NotificationCommands(LedgerBase):
    """Each user's own notification settings and read marks."""

    def get_preferences(self, caller: Caller) -> Preferences:
        """The caller's preferences, from the event store (so a PATCH is seen at once);
        the defaults for someone who never changed anything."""
        inbox = self._inbox(inbox_id_for(caller.id))
        return Preferences(order_updates=True if inbox is None else inbox.order_updates)

    def set_preferences(self, caller: Caller, order_updates: bool) -> Done[Inbox]:
        """Turn the caller's order-update notifications on or off, from now on.

        Raises: Forbidden (an account that is never a party: it has no notifications),
        ValidationFailed (not a boolean).
        """
        return self._on_inbox(caller, lambda i, a, t: i.set_order_updates(order_updates, a, t))

    def mark_notification_read(
        self, caller: Caller, notification_id: UUID, recipient_id: str | None
    ) -> Done[Inbox]:
        """Mark one of the caller's notifications read (again: a no-op). ``recipient_id``
        is who the read model says the notification was made for (``None``: unknown).

        Raises: NotFound (unknown, or made for someone else), Forbidden.
        """
        if recipient_id is None or recipient_id != caller.id:
            raise NotFound(f"notification {notification_id} not found")
        return self._on_inbox(caller, lambda i, a, t: i.mark_read(notification_id, a, t))

    def _inbox(self, inbox_id: UUID) -> Inbox | None:
        try:
            return self._load(Inbox, inbox_id)
        except NotFound:
            return None

    @staticmethod
    def _owner(caller: Caller) -> Actor:
        """Raises: Forbidden, for accounts that are never a party to an order (support,
        auditors): nothing is ever made for them, and auditors change nothing."""
        if not caller.roles & ORDER_CREATORS:
            raise Forbidden("this account receives no notifications")
        return caller.acting_as("owner")

    def _on_inbox(self, caller: Caller, act: InboxAction) -> Done[Inbox]:
        """Load (or open) the caller's inbox, act, save; a command that changes nothing
        saves nothing (``Unchanged``)."""
        actor = self._owner(caller)
        inbox_id = inbox_id_for(caller.id)

        def decide() -> list[Inbox]:
            now = self.clock()
            inbox = self._inbox(inbox_id) or Inbox.open(actor, now)
            before = inbox.version
            act(inbox, actor, now)
            if inbox.version == before:
                raise Unchanged(inbox)
            return [inbox]

        return self._run(decide)
