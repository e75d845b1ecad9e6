"""Queries of the escrow ledger: accounts, journal entries, the trial balance, a
freelancer's balance, and the holds whose funds are due to clear.

Amounts leave here as ``Decimal`` MAD (``from_centimes``); the sums are taken in SQL on
integer centimes, so nothing is rounded on the way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from ledger.money import CURRENCY, from_centimes
from projections.base import Envelope
from projections.db import Database, Row
from projections.escrow.projection import load_holds
from projections.escrow.rules import (
    FEES,
    GATEWAY,
    Journal,
    balance_of,
    freelancer_account,
    hold_key,
)
from projections.paging import Filters, Page, page

EXPORT_BATCH = 1_000
JOURNAL_COLUMNS = (
    "entry_id",
    "position",
    "at",
    "order_id",
    "payment_id",
    "description",
    "account",
    "debit",
    "credit",
)
"""The journal as a table, one row per posting (``ledger escrow export``, the console)."""


class EscrowQueries:
    """What auditors, support and freelancers read of the books."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def accounts(self) -> list[dict[str, Any]]:
        """Every account with its debits, credits and natural-sign balance, by name."""
        rows = self.db.read("SELECT * FROM escrow_accounts ORDER BY account")
        return [account_view(row) for row in rows]

    def entries(
        self,
        *,
        order_id: str | None = None,
        account: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page:
        """Journal entries, newest first; ``account`` keeps those with a posting on it.

        Raises: ValidationFailed (limit), InvalidCursor.
        """
        filters: Filters = {
            "order_id": ("order_id = :order_id", order_id),
            "account": (
                "id IN (SELECT entry_id FROM escrow_postings WHERE account = :account)",
                account,
            ),
        }
        found = page(self.db, "escrow_entries", filters, limit, starting_after, entry_view)
        self._attach_postings(found.data)
        return found

    def trial_balance(self) -> dict[str, Any]:
        """Total debits and credits over every account; balanced when they are equal."""
        debits, credits = self.totals()
        return {
            "debits": from_centimes(debits),
            "credits": from_centimes(credits),
            "balanced": debits == credits,
        }

    def totals(self) -> tuple[int, int]:
        """Total debits and credits, in centimes."""
        rows = self.db.read(
            "SELECT COALESCE(SUM(debits), 0) AS debits, COALESCE(SUM(credits), 0) AS credits"
            " FROM escrow_accounts"
        )
        return int(rows[0]["debits"]), int(rows[0]["credits"])

    def flows_per_day(self, since: str) -> dict[str, dict[str, int]]:
        """Per UTC day from ``since``, in centimes: ``paid`` into the gateway account,
        ``refunded`` out of it, and ``fees`` earned (credits less debits of the fees)."""
        rows = self.db.read(
            "SELECT SUBSTR(e.at, 1, 10) AS day,"
            " COALESCE(SUM(CASE WHEN p.account = :gateway THEN p.debit END), 0) AS paid,"
            " COALESCE(SUM(CASE WHEN p.account = :gateway THEN p.credit END), 0) AS refunded,"
            " COALESCE(SUM(CASE WHEN p.account = :fees THEN p.credit - p.debit END), 0) AS fees"
            " FROM escrow_entries e JOIN escrow_postings p ON p.entry_id = e.id"
            " WHERE e.at >= :since GROUP BY SUBSTR(e.at, 1, 10)",
            {"since": since, "gateway": GATEWAY, "fees": FEES},
        )
        return {
            row["day"]: {key: int(row[key]) for key in ("paid", "refunded", "fees")} for row in rows
        }

    def balance(self, user_id: str) -> dict[str, Any]:
        """A freelancer's balance: released to them and not yet cleared, and the rest."""
        account = freelancer_account(user_id)
        [row] = self.db.read(  # one statement, one snapshot: both figures or neither moved
            "SELECT (SELECT credits - debits FROM escrow_accounts WHERE account = :account)"
            " AS owed, (SELECT COALESCE(SUM(pending), 0) FROM escrow_holds"
            " WHERE freelancer_id = :user_id AND cleared_at IS NULL) AS pending",
            {"account": account, "user_id": user_id},
        )
        owed, pending = int(row["owed"] or 0), int(row["pending"])
        return {
            "pendingClearance": from_centimes(pending),
            "available": from_centimes(owed - pending),
            "currency": CURRENCY,
        }

    def orders_to_clear(self, released_before: str, limit: int = 500) -> list[str]:
        """Orders released at or before ``released_before`` (an ISO time) whose funds have
        not cleared, oldest first: candidates for the clearance timer."""
        rows = self.db.read(
            "SELECT order_id FROM escrow_holds WHERE cleared_at IS NULL"
            " AND released_at <= :before ORDER BY released_at LIMIT :limit",
            {"before": released_before, "limit": limit},
        )
        return [row["order_id"] for row in rows]

    def all_entries(self, batch: int = EXPORT_BATCH) -> Iterator[dict[str, Any]]:
        """Every entry with its postings, oldest first, read ``batch`` at a time (an
        export of millions of entries never holds them all)."""
        after = 0
        while True:
            rows = self.db.read(
                "SELECT * FROM escrow_entries WHERE position > :after"
                " ORDER BY position LIMIT :limit",
                {"after": after, "limit": batch},
            )
            if not rows:
                return
            entries = [entry_view(row) for row in rows]
            self._attach_postings(entries)
            yield from entries
            after = rows[-1]["position"]

    def entries_of_order(self, order_id: str) -> dict[int, dict[str, Any]]:
        """Every entry an order's events caused, with its postings, by the event's position
        (an order's entries are few: its payment, refunds, release and clearance)."""
        rows = self.db.read(
            "SELECT * FROM escrow_entries WHERE order_id = :order_id ORDER BY position",
            {"order_id": order_id},
        )
        entries = [entry_view(row) for row in rows]
        self._attach_postings(entries)
        return {entry["position"]: entry for entry in entries}

    def preview(self, events: Sequence[Any]) -> list[dict[str, Any]]:
        """The entries ``events`` would post if recorded now, after what the read model
        holds (the same rules as the projection, on a copy of the holds; nothing written):
        a preview of a command's postings. Entries carry no position (0)."""
        envelopes = [Envelope(0, event) for event in events]
        keys = [hold_key(envelope) for envelope in envelopes]
        with self.db.transaction(write=False) as txn:
            journal = Journal(load_holds(txn, sorted(set(keys))))
        entries = [
            entry
            for envelope, key in zip(envelopes, keys, strict=True)
            for entry in journal.post(envelope, key)
        ]
        return [
            {
                "description": entry.description,
                "postings": [
                    posting_view({"account": p.account, "debit": p.debit, "credit": p.credit})
                    for p in entry.postings
                ],
            }
            for entry in entries
        ]

    def unbalanced_entries(self) -> list[str]:
        """Ids of entries whose debits and credits differ (an auditor's check: none)."""
        rows = self.db.read(
            "SELECT entry_id FROM escrow_postings GROUP BY entry_id"
            " HAVING SUM(debit) <> SUM(credit) ORDER BY entry_id"
        )
        return [row["entry_id"] for row in rows]

    def _attach_postings(self, entries: list[dict[str, Any]]) -> None:
        lines: dict[str, list[Row]] = defaultdict(list)
        with self.db.transaction(write=False) as txn:
            select = "SELECT * FROM escrow_postings"
            for row in txn.rows_in(select, "entry_id", [e["id"] for e in entries]):
                lines[row["entry_id"]].append(row)
        for entry in entries:
            ordered = sorted(lines[entry["id"]], key=lambda row: row["line"])
            entry["postings"] = [posting_view(row) for row in ordered]


def journal_rows(entry: dict[str, Any]) -> list[list[Any]]:
    """An entry (as ``all_entries`` gives it) as rows of ``JOURNAL_COLUMNS``."""
    head = [entry[key] for key in ("id", "position", "at", "orderId", "paymentId")]
    return [
        [*head, entry["description"], posting["account"], posting["debit"], posting["credit"]]
        for posting in entry["postings"]
    ]


def account_view(row: Row) -> dict[str, Any]:
    debits, credits = int(row["debits"]), int(row["credits"])
    return {
        "account": row["account"],
        "debits": from_centimes(debits),
        "credits": from_centimes(credits),
        "balance": from_centimes(balance_of(row["account"], debits, credits)),
    }


def entry_view(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "orderId": row["order_id"],
        "paymentId": row["payment_id"],
        "position": row["position"],
        "at": row["at"],
        "description": row["description"],
        "postings": [],
    }


def posting_view(row: Row) -> dict[str, Any]:
    return {
        "account": row["account"],
        "debit": from_centimes(row["debit"]),
        "credit": from_centimes(row["credit"]),
    }
