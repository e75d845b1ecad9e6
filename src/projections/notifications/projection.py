"""Notifications: what each party of an order is told of it (rules in ``rules``), unless
they turned order updates off, and which of them they read.

The preference is read from the log like everything else: ``notification_settings`` holds
each inbox's ``orderUpdatesNotifications`` *as of the event being applied*, so a rebuild
honours a preference as it was at each moment, not as it is now. ``notification_orders``
keeps each order's parties (from ``OrderPlaced``), so this read model needs no other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from ledger.clock import iso
from ledger.domain.conversation import Conversation
from ledger.domain.inbox import Inbox, inbox_id_for
from ledger.domain.order import Order
from projections.base import Envelope, Projection, topics_named
from projections.db import Row, Txn
from projections.notifications.rules import (
    MESSAGE,
    ORDER_EVENTS,
    Notification,
    Parties,
    message_notifications,
    notifications_of,
)

INBOX_EVENTS = ("InboxOpened", "PreferencesChanged", "NotificationRead")

INSERT_NOTIFICATION = """
INSERT INTO notifications (id, position, recipient_id, type, order_id, message, created_at,
    read_at)
VALUES (:id, :position, :recipient_id, :type, :order_id, :message, :created_at, :read_at)
"""
INSERT_ORDER = """
INSERT INTO notification_orders (order_id, client_id, freelancer_id)
VALUES (:order_id, :client_id, :freelancer_id)
"""
UPSERT_SETTING = """
INSERT INTO notification_settings (inbox_id, user_id, order_updates)
VALUES (:inbox_id, :user_id, :order_updates)
ON CONFLICT (inbox_id) DO UPDATE SET order_updates = excluded.order_updates
"""
UNREAD_MESSAGES = """SELECT * FROM (SELECT id, recipient_id, order_id FROM notifications
    WHERE type = 'order.message' AND read_at IS NULL) AS unread"""
"""Each recipient's unread message notification (``rows_in`` adds the orders)."""
MARK_READ = """
UPDATE notifications SET read_at = :read_at
WHERE id = :id AND recipient_id = :recipient_id AND read_at IS NULL
"""


@dataclass
class Setting:
    inbox_id: str
    user_id: str
    order_updates: bool = True


class Notifications(Projection):
    """``notifications`` (newest first by ``position``, per recipient), and the state the
    rules need: ``notification_orders`` (parties) and ``notification_settings``."""

    name: ClassVar[str] = "notifications"
    tables: ClassVar[tuple[str, ...]] = (
        "notifications",
        "notification_orders",
        "notification_settings",
    )

    def __init__(self) -> None:
        wanted = {*ORDER_EVENTS, *INBOX_EVENTS, MESSAGE}
        self._topics = topics_named(wanted, Order, Inbox, Conversation)

    @property
    def topics(self) -> Sequence[str]:
        return self._topics

    def schema(self) -> Sequence[str]:
        return [
            """CREATE TABLE IF NOT EXISTS notifications (
                id TEXT PRIMARY KEY, position BIGINT NOT NULL UNIQUE,
                recipient_id TEXT NOT NULL, type TEXT NOT NULL, order_id TEXT NOT NULL,
                message TEXT NOT NULL, created_at TEXT NOT NULL, read_at TEXT)""",
            "CREATE INDEX IF NOT EXISTS notifications_by_recipient"
            " ON notifications (recipient_id, position)",
            # A message's batch looks up its order's unread ones (``UNREAD_MESSAGES``); without
            # it, a scan of every notification ever made. Created at start where it is missing.
            "CREATE INDEX IF NOT EXISTS notifications_unread_messages ON notifications (order_id)"
            " WHERE type = 'order.message' AND read_at IS NULL",
            """CREATE TABLE IF NOT EXISTS notification_orders (
                order_id TEXT PRIMARY KEY, client_id TEXT NOT NULL,
                freelancer_id TEXT NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS notification_settings (
                inbox_id TEXT PRIMARY KEY, user_id TEXT NOT NULL UNIQUE,
                order_updates BOOLEAN NOT NULL)""",
        ]

    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        state = _State.load(txn, batch)
        made: list[Notification] = []
        reads: list[Row] = []
        for envelope in batch:
            kind, event = envelope.kind, envelope.event
            if kind == "OrderPlaced":
                state.place(event)
            elif kind in INBOX_EVENTS:
                read = state.settle(envelope)
                reads += read
                state.forget_read(read)
            elif kind == MESSAGE:
                made += [n for n in state.message(envelope) if state.wants(n)]
            else:
                made_now = notifications_of(envelope, state.parties_of(event))
                made += [n for n in made_now if state.wants(n)]
        txn.executemany(INSERT_ORDER, state.new_orders)
        # vars(), not asdict(), which deep-copies field by field: these fields are flat.
        txn.executemany(UPSERT_SETTING, [vars(s) for s in state.changed.values()])
        txn.executemany(INSERT_NOTIFICATION, [{**vars(n), "read_at": None} for n in made])
        txn.executemany(MARK_READ, reads)  # after the inserts: a rebuild reads in one batch


class _State:
    """What the rules need to know while a batch is applied: the parties of its orders
    and the settings of their inboxes, loaded once and kept up to date event by event."""

    def __init__(
        self,
        parties: dict[str, Parties],
        settings: dict[str, Setting],
        unread: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.parties = parties
        self.settings = settings
        self.unread = unread or {}
        """(recipient, order) → the id of their unread ``order.message`` notification: a
        burst of messages makes one, until it is read."""
        self.new_orders: list[Row] = []
        self.changed: dict[str, Setting] = {}

    @classmethod
    def load(cls, txn: Txn, batch: Sequence[Envelope]) -> _State:
        order_ids = sorted(
            {str(e.event.originator_id) for e in batch if e.kind in ORDER_EVENTS}
            | {str(e.event.order_id) for e in batch if e.kind == MESSAGE}
        )
        parties = {
            row["order_id"]: Parties(row["client_id"], row["freelancer_id"])
            for row in txn.rows_in("SELECT * FROM notification_orders", "order_id", order_ids)
        }
        users = {p.client_id for p in parties.values()} | {
            p.freelancer_id for p in parties.values()
        }
        users |= {e.event.client_id for e in batch if e.kind == "OrderPlaced"}
        users |= {e.event.freelancer_id for e in batch if e.kind == "OrderPlaced"}
        inbox_ids = {str(inbox_id_for(user)) for user in users}
        inbox_ids |= {str(e.event.originator_id) for e in batch if e.kind in INBOX_EVENTS}
        select = "SELECT * FROM notification_settings"
        settings = {
            row["inbox_id"]: Setting(row["inbox_id"], row["user_id"], bool(row["order_updates"]))
            for row in txn.rows_in(select, "inbox_id", sorted(inbox_ids))
        }
        messaged = sorted({str(e.event.order_id) for e in batch if e.kind == MESSAGE})
        unread = {
            (row["recipient_id"], row["order_id"]): row["id"]
            for row in txn.rows_in(UNREAD_MESSAGES, "order_id", messaged)
        }
        return cls(parties, settings, unread)

    def message(self, envelope: Envelope) -> list[Notification]:
        """The ``order.message`` notifications a message makes: one per other party who has
        none unread for the order already."""
        event = envelope.event
        order_id = str(event.order_id)
        made = [
            n
            for n in message_notifications(envelope, self.parties[order_id])
            if (n.recipient_id, order_id) not in self.unread
        ]
        for n in made:
            if self.wants(n):
                self.unread[(n.recipient_id, order_id)] = n.id
        return made

    def forget_read(self, reads: list[Row]) -> None:
        """A notification marked read: the next message makes a new one."""
        read = {row["id"] for row in reads}
        for key in [key for key, n in self.unread.items() if n in read]:
            del self.unread[key]

    def place(self, event: Any) -> None:
        order_id = str(event.originator_id)
        self.parties[order_id] = Parties(event.client_id, event.freelancer_id)
        self.new_orders.append(
            {
                "order_id": order_id,
                "client_id": event.client_id,
                "freelancer_id": event.freelancer_id,
            }
        )

    def parties_of(self, event: Any) -> Parties:
        return self.parties[str(event.originator_id)]

    def wants(self, notification: Notification) -> bool:
        """Whether the recipient takes order updates at this point of the log (yes until
        they turn them off; an inbox is only opened by a change)."""
        setting = self.settings.get(str(inbox_id_for(notification.recipient_id)))
        return setting is None or setting.order_updates

    def settle(self, envelope: Envelope) -> list[Row]:
        """Apply an inbox event; the read marks it makes, as ``MARK_READ`` rows."""
        event, inbox_id = envelope.event, str(envelope.event.originator_id)
        if envelope.kind == "InboxOpened":
            self.settings[inbox_id] = self.changed[inbox_id] = Setting(inbox_id, event.user_id)
            return []
        setting = self.settings[inbox_id]
        if envelope.kind == "PreferencesChanged":
            setting.order_updates = bool(event.order_updates)
            self.changed[inbox_id] = setting
            return []
        notification = str(UUID(str(event.notification_id)))
        return [
            {"id": notification, "recipient_id": setting.user_id, "read_at": iso(event.timestamp)}
        ]
