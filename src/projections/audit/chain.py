"""The audit chain: a hash over the whole notification log, link by link.

``h_n = SHA-256(h_{n-1} ‖ canonical bytes of event n)``, with ``h_0`` 32 zero bytes. The
canonical bytes are the event as stored: its position, stream (the aggregate id as 32 hex
digits), version, topic and the exact state bytes, each field separated by a unit
separator, so no two events share a form. Each link is kept (``audit_chain``): a later
recomputation from the raw store that disagrees at some position names the first event
changed, deleted or slipped in since it was chained.

The chain lives in the same database as the events, so someone who can rewrite events can
rewrite it too: that is what ``ledger audit digest`` is for (the head, kept outside). And a
rebuild of this projection re-anchors the chain to the store as it is now.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar, Final
from uuid import UUID

from eventsourcing.persistence import Notification

from projections.base import Envelope, Projection
from projections.db import Txn

GENESIS: Final = bytes(32)
INSERT_LINK = "INSERT INTO audit_chain (position, hash) VALUES (:position, :hash)"


def canonical(position: int, stream: str, version: int, topic: str, state: bytes) -> bytes:
    """The bytes of an event that the chain covers: everything the store keeps of it."""
    if isinstance(state, bytes | bytearray | memoryview):
        body = bytes(state)
    else:  # text someone wrote into the column by hand: still hashed, never a crash
        body = str(state).encode()
    return f"{position}\x1f{stream}\x1f{version}\x1f{topic}\x1f".encode() + body


def link(previous: bytes, stored: Notification) -> bytes:
    """The chain's hash after ``stored``, given the hash before it."""
    stream = stored.originator_id
    text = stream.hex if isinstance(stream, UUID) else str(stream).replace("-", "")
    return next_hash(
        previous, stored.id, text, stored.originator_version, stored.topic, stored.state
    )


def next_hash(
    previous: bytes, position: int, stream: object, version: int, topic: str, state: bytes
) -> bytes:
    return hashlib.sha256(
        previous + canonical(position, str(stream), version, topic, state)
    ).digest()


class AuditChain(Projection):
    """``audit_chain``: the chain's hash after every event, by position."""

    name: ClassVar[str] = "audit"
    tables: ClassVar[tuple[str, ...]] = ("audit_chain",)
    reads_everything: ClassVar[bool] = True

    @property
    def topics(self) -> Sequence[str]:
        return ()

    def schema(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS audit_chain"
            " (position BIGINT PRIMARY KEY, hash TEXT NOT NULL)"
        ]

    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        last = txn.one("SELECT hash FROM audit_chain ORDER BY position DESC LIMIT 1")
        previous = GENESIS if last is None else bytes.fromhex(last["hash"])
        rows = []
        for envelope in batch:
            assert envelope.stored is not None, "the runner hands the stored bytes along"
            previous = link(previous, envelope.stored)
            rows.append({"position": envelope.position, "hash": previous.hex()})
        txn.executemany(INSERT_LINK, rows)
