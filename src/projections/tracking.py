"""Each projection's position in the notification log, kept in the read models' database.

The runner moves a position in the same transaction as the rows of the batch it covers,
and only from the position it read (``advance``): if another runner moved it meanwhile, no
row changes, the batch is rolled back, and nothing is applied twice.
"""

from __future__ import annotations

from projections.db import Database, Txn

SCHEMA = """CREATE TABLE IF NOT EXISTS projection_tracking (
    name TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at TEXT)"""
VERSIONS = """CREATE TABLE IF NOT EXISTS projection_versions (
    name TEXT PRIMARY KEY, version INTEGER NOT NULL)"""


def create(txn: Txn, names: list[str]) -> None:
    txn.execute(SCHEMA)
    txn.execute(VERSIONS)
    for name in names:
        txn.execute(
            "INSERT INTO projection_tracking (name, position) VALUES (:name, 0)"
            " ON CONFLICT (name) DO NOTHING",
            {"name": name},
        )


def positions(db: Database) -> dict[str, int]:
    rows = db.read("SELECT name, position FROM projection_tracking")
    return {row["name"]: int(row["position"]) for row in rows}


def advance(txn: Txn, name: str, old: int, new: int, at: str) -> bool:
    """Move ``name`` from ``old`` to ``new``; False if it was no longer at ``old``."""
    changed = txn.execute(
        "UPDATE projection_tracking SET position = :new, updated_at = :at"
        " WHERE name = :name AND position = :old",
        {"name": name, "old": old, "new": new, "at": at},
    )
    return changed == 1


def reset(txn: Txn, name: str) -> None:
    txn.execute("UPDATE projection_tracking SET position = 0 WHERE name = :name", {"name": name})


def stored_version(txn: Txn, name: str) -> int | None:
    """The table shape a projection was built with: ``None`` when it was never built, 1 when
    it was built before versions were recorded."""
    row = txn.one("SELECT version FROM projection_versions WHERE name = :name", {"name": name})
    if row is not None:
        return int(row["version"])
    built = txn.one(
        "SELECT position FROM projection_tracking WHERE name = :name AND position > 0",
        {"name": name},
    )
    return 1 if built is not None else None


def record_version(txn: Txn, name: str, version: int) -> None:
    txn.execute(
        "INSERT INTO projection_versions (name, version) VALUES (:name, :version)"
        " ON CONFLICT (name) DO UPDATE SET version = excluded.version",
        {"name": name, "version": version},
    )
