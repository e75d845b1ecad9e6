"""The Inbox aggregate: one per user, holding what they chose to be told and what they read.

Notifications themselves are not stored here: they are derived from the orders' events by
the ``notifications`` read model, so a rebuild makes them again. What a user *decides* about
them is a fact of its own, and is event-sourced here: the ``orderUpdatesNotifications``
preference (so a rebuild honours it as it was at each moment of the log) and each
notification they marked read.

The id is derived from the user id (``inbox_id_for``), like a payment's from its order's:
two first commands of the same user race on the same id, and the store keeps one inbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger.actors import Actor
from ledger.errors import Forbidden, ValidationFailed

INBOX_NAMESPACE: Final = UUID("0b8f6a7e-3f51-4b36-9d8e-6c2d1f0a4e27")


def inbox_id_for(user_id: str) -> UUID:
    """The one inbox id a user can ever have."""
    return uuid5(INBOX_NAMESPACE, f"inbox:{user_id}")


class Inbox(Aggregate):
    """A user's notification settings and read marks."""

    @event("InboxOpened")
    def __init__(self, user_id: str, actor: Actor, timestamp: datetime) -> None:
        self.user_id = user_id
        self.order_updates = True
        """``orderUpdatesNotifications``: on until the user turns it off."""
        self.read: dict[str, datetime] = {}
        """Notification id → when the user marked it read (a dict, not a set: it is
        snapshotted as JSON)."""

    @staticmethod
    def create_id(user_id: str) -> UUID:
        return inbox_id_for(user_id)

    @classmethod
    def open(cls, actor: Actor, timestamp: datetime) -> Inbox:
        """The inbox of ``actor``, made on their first change (until then every default
        holds, and nothing needs storing)."""
        return cls(user_id=actor.id, actor=actor, timestamp=timestamp)

    def _require_owner(self, actor: Actor) -> None:
        if actor.id != self.user_id:
            raise Forbidden("an inbox is its owner's alone")

    def set_order_updates(self, enabled: bool, actor: Actor, timestamp: datetime) -> None:
        """Turn order-update notifications on or off; setting the current value again
        records nothing.

        Raises: Forbidden (not the owner), ValidationFailed (not a boolean).
        """
        self._require_owner(actor)
        if not isinstance(enabled, bool):
            raise ValidationFailed(
                "orderUpdatesNotifications must be true or false",
                field="orderUpdatesNotifications",
            )
        if enabled != self.order_updates:
            self._preferences_changed(enabled, actor, timestamp)

    @event("PreferencesChanged")
    def _preferences_changed(self, order_updates: bool, actor: Actor, timestamp: datetime) -> None:
        self.order_updates = order_updates

    def mark_read(self, notification_id: UUID, actor: Actor, timestamp: datetime) -> None:
        """Mark one of the owner's notifications read; marking it again records nothing.
        (Whether the notification is the owner's is the application's check: only the
        read model knows who a notification went to.)

        Raises: Forbidden (not the owner).
        """
        self._require_owner(actor)
        if str(notification_id) not in self.read:
            self._notification_read(notification_id, actor, timestamp)

    @event("NotificationRead")
    def _notification_read(self, notification_id: UUID, actor: Actor, timestamp: datetime) -> None:
        self.read[str(notification_id)] = timestamp

    def read_at(self, notification_id: UUID) -> datetime | None:
        return self.read.get(str(notification_id))
