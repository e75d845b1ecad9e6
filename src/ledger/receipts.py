"""Receipts: a keyed command's outcome, recorded in the transaction of its events.

A client that retries a request under the same ``Idempotency-Key`` must get the first
answer, not a second action. The HTTP edge keeps the answer's bytes after the command
(``api.http.idempotency``); if the process dies between the commit and that, the bytes are
lost.
The receipt closes that gap: it names the aggregate, its version and the position the
command left, and it is written in the same transaction as the events (``ledger.store``),
so it exists exactly when they do. A retry that finds it is answered from it — the
aggregate read at that version — instead of deciding again.

The edge hands the key to the command through a context variable (``keyed``) rather than
through every command's signature: it is a property of the request, like the caller's
request id, and the command needs it only at the moment of saving. One request records one
receipt: the first command takes it (``take``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from uuid import UUID

RECEIPTS_TABLE = "ledger_receipts"


@dataclass
class Receipt:
    """The key a request runs under. ``recheck``: an earlier run of this very request may
    have committed (its claim was left unfinished), so look for its receipt before acting;
    ``replayed``: it was found, and the command answered from it."""

    caller_id: str
    key: str
    request_hash: str
    recheck: bool = False
    taken: bool = field(default=False, compare=False)
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Outcome:
    """What a keyed command left: its aggregate at ``version``, its last event at
    ``position``. ``recorded_at`` is ISO 8601 (UTC), for the retention purge."""

    caller_id: str
    key: str
    request_hash: str
    aggregate_id: UUID
    version: int
    position: int
    recorded_at: str


_current: ContextVar[Receipt | None] = ContextVar("ledger_receipt", default=None)


@contextmanager
def keyed(receipt: Receipt) -> Iterator[Receipt]:
    """Run the commands of one request under ``receipt`` (the edge's ``Idempotency-Key``)."""
    token = _current.set(receipt)
    try:
        yield receipt
    finally:
        _current.reset(token)


def take() -> Receipt | None:
    """The running request's receipt, once: a second command of the same request records
    none (its outcome is not the request's answer)."""
    receipt = _current.get()
    if receipt is None or receipt.taken:
        return None
    receipt.taken = True
    return receipt


@dataclass(frozen=True)
class ReceiptEntry:
    """A receipt on its way into the store with the events of its command: ``last`` is the
    index, among the transaction's events, of the command's last event (whose position
    the store assigns only as it inserts them)."""

    receipt: Receipt
    aggregate_id: UUID
    version: int
    last: int
    recorded_at: str

    def row(self, positions: Sequence[int]) -> tuple[str, str, str, str, int, int, str]:
        receipt = self.receipt
        return (
            receipt.caller_id,
            receipt.key,
            receipt.request_hash,
            str(self.aggregate_id),
            self.version,
            positions[self.last],
            self.recorded_at,
        )
