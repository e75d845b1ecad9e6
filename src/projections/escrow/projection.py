"""The escrow ledger: double-entry journal entries for every movement of money, the
balance of each account, and each order's hold (what escrow keeps for it and what of the
freelancer's share has not cleared yet).

The rules live in ``postings``; this module loads the holds a batch touches, runs the rules
and writes entries, postings, account totals and holds in the runner's transaction, so the
books move exactly once per event.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar

from ledger.domain.order import Order
from ledger.domain.payment import Payment
from projections.base import Envelope, Projection, topics_of
from projections.db import Row, Txn
from projections.escrow.rules import ORDER_EVENTS, PAYMENT_EVENTS, Entry, Hold, Journal, hold_key

INSERT_ENTRY = """
INSERT INTO escrow_entries (id, position, order_id, payment_id, at, description)
VALUES (:id, :position, :order_id, :payment_id, :at, :description)
"""
INSERT_POSTING = """
INSERT INTO escrow_postings (entry_id, line, position, account, debit, credit)
VALUES (:entry_id, :line, :position, :account, :debit, :credit)
"""
ADD_TO_ACCOUNT = """
INSERT INTO escrow_accounts (account, debits, credits) VALUES (:account, :debits, :credits)
ON CONFLICT (account) DO UPDATE SET debits = escrow_accounts.debits + excluded.debits,
    credits = escrow_accounts.credits + excluded.credits
"""
UPSERT_HOLD = """
INSERT INTO escrow_holds (payment_id, order_id, freelancer_id, amount, escrow, requested,
    pending, net_left, fee_left, released_at, cleared_at)
VALUES (:payment_id, :order_id, :freelancer_id, :amount, :escrow, :requested, :pending,
    :net_left, :fee_left, :released_at, :cleared_at)
ON CONFLICT (payment_id) DO UPDATE SET escrow = excluded.escrow,
    requested = excluded.requested, pending = excluded.pending,
    net_left = excluded.net_left, fee_left = excluded.fee_left,
    released_at = excluded.released_at, cleared_at = excluded.cleared_at
"""


class EscrowLedger(Projection):
    """``escrow_entries`` and ``escrow_postings`` (the journal), ``escrow_accounts`` (each
    account's debits and credits) and ``escrow_holds`` (one per payment)."""

    name: ClassVar[str] = "escrow"
    tables: ClassVar[tuple[str, ...]] = (
        "escrow_postings",
        "escrow_entries",
        "escrow_accounts",
        "escrow_holds",
    )
    version: ClassVar[int] = 2  # 2: holds keep what was released, for refunds after it

    @property
    def topics(self) -> Sequence[str]:
        wanted = {*PAYMENT_EVENTS, *ORDER_EVENTS}
        return [t for t in topics_of(Payment, Order) if t.rsplit(".", 1)[-1] in wanted]

    def schema(self) -> Sequence[str]:
        return [
            """CREATE TABLE IF NOT EXISTS escrow_entries (
                id TEXT PRIMARY KEY, position BIGINT NOT NULL UNIQUE, order_id TEXT NOT NULL,
                payment_id TEXT NOT NULL, at TEXT NOT NULL, description TEXT NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS escrow_entries_by_order"
            " ON escrow_entries (order_id, position)",
            """CREATE TABLE IF NOT EXISTS escrow_postings (
                entry_id TEXT NOT NULL, line INTEGER NOT NULL, position BIGINT NOT NULL,
                account TEXT NOT NULL, debit BIGINT NOT NULL, credit BIGINT NOT NULL,
                PRIMARY KEY (entry_id, line))""",
            "CREATE INDEX IF NOT EXISTS escrow_postings_by_account"
            " ON escrow_postings (account, position)",
            """CREATE TABLE IF NOT EXISTS escrow_accounts (
                account TEXT PRIMARY KEY, debits BIGINT NOT NULL, credits BIGINT NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS escrow_holds (
                payment_id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE,
                freelancer_id TEXT NOT NULL, amount BIGINT NOT NULL, escrow BIGINT NOT NULL,
                requested TEXT NOT NULL, pending BIGINT NOT NULL, net_left BIGINT NOT NULL,
                fee_left BIGINT NOT NULL, released_at TEXT,
                cleared_at TEXT)""",
            "CREATE INDEX IF NOT EXISTS escrow_holds_by_freelancer"
            " ON escrow_holds (freelancer_id) WHERE cleared_at IS NULL",
            "CREATE INDEX IF NOT EXISTS escrow_holds_to_clear"
            " ON escrow_holds (released_at) WHERE cleared_at IS NULL",
        ]

    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        keys = [hold_key(envelope) for envelope in batch]  # a uuid5 each: worked out once
        holds = load_holds(txn, sorted(set(keys)))
        journal = Journal(holds)
        entries = [
            entry
            for envelope, key in zip(batch, keys, strict=True)
            for entry in journal.post(envelope, key)
        ]
        txn.executemany(INSERT_ENTRY, [_entry_row(entry) for entry in entries])
        txn.executemany(INSERT_POSTING, _posting_rows(entries))
        txn.executemany(ADD_TO_ACCOUNT, _account_deltas(entries))
        txn.executemany(UPSERT_HOLD, [_hold_row(hold) for hold in holds.values()])


def load_holds(txn: Txn, payment_ids: list[str]) -> dict[str, Hold]:
    """The holds of ``payment_ids`` as the read model has them (those it has)."""
    holds = {}
    for row in txn.rows_in("SELECT * FROM escrow_holds", "payment_id", payment_ids):
        requested = [(int(amount), str(reason)) for amount, reason in json.loads(row["requested"])]
        holds[row["payment_id"]] = Hold(**{**row, "requested": requested})
    return holds


def _entry_row(entry: Entry) -> Row:
    return {
        "id": entry.id,
        "position": entry.position,
        "order_id": entry.order_id,
        "payment_id": entry.payment_id,
        "at": entry.at,
        "description": entry.description,
    }


def _posting_rows(entries: list[Entry]) -> list[Row]:
    return [
        {
            "entry_id": entry.id,
            "line": line,
            "position": entry.position,
            "account": posting.account,
            "debit": posting.debit,
            "credit": posting.credit,
        }
        for entry in entries
        for line, posting in enumerate(entry.postings, start=1)
    ]


def _account_deltas(entries: list[Entry]) -> list[Row]:
    """One row per account the batch moved, with what it added (one upsert per account,
    not per posting: the totals are hot rows)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entry in entries:
        for posting in entry.postings:
            totals[posting.account][0] += posting.debit
            totals[posting.account][1] += posting.credit
    return [
        {"account": account, "debits": debits, "credits": credits}
        for account, (debits, credits) in sorted(totals.items())
    ]


def _hold_row(hold: Hold) -> dict[str, Any]:
    return {**vars(hold), "requested": json.dumps(hold.requested)}
