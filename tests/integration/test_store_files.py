"""The files of a SQLite installation are its user's alone (issue 18): the store and its
``-wal``/``-shm`` files 0600, the folders made for them 0700, the development secret 0600 —
whatever the umask lets through (the usual 022 would leave them readable by everyone)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.actors import Caller
from ledger.bootstrap import build_ledger, private_sqlite_file
from ledger.domain.values import Package
from ledger.settings import load_settings


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def test_a_new_store_and_its_folders_are_private(tmp_path: Path, usual_umask: None) -> None:
    store = tmp_path / "data" / "ledger.db"
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{store}",
        LEDGER_VAR_DIR=str(tmp_path / "var"),
        _env_file=None,
    )
    app = build_ledger(settings)  # the sandbox gateway: its key is generated into var/
    try:
        app.create_gig(Caller("f-1"), "Logo", [Package("basic", 5_000, 2, 0, "A logo")])
        companions = [store.with_name(store.name + end) for end in ("-wal", "-shm")]
        assert all(path.exists() for path in companions), "the store runs in WAL mode"
        assert {path.name: mode(path) for path in [store, *companions]} == {
            "ledger.db": "0o600",
            "ledger.db-wal": "0o600",
            "ledger.db-shm": "0o600",
        }
    finally:
        app.close()
    assert mode(tmp_path / "data") == "0o700"
    assert mode(tmp_path / "var") == "0o700"
    assert mode(tmp_path / "var" / "sandbox-gateway-key") == "0o600"


def test_existing_folders_and_stores_are_left_as_they_are(
    tmp_path: Path, usual_umask: None
) -> None:
    """Only what the ledger makes is made private: an operator's folder keeps its mode."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    os.chmod(shared, 0o750)
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{shared / 'ledger.db'}",
        LEDGER_VAR_DIR=str(tmp_path / "var"),
        _env_file=None,
    )
    build_ledger(settings).close()
    assert mode(shared) == "0o750"
    assert mode(shared / "ledger.db") == "0o600"
    os.chmod(shared / "ledger.db", 0o640)
    build_ledger(settings).close()
    assert mode(shared / "ledger.db") == "0o640"


def test_a_symlink_in_place_of_the_store_is_neither_followed_nor_replaced(
    tmp_path: Path, usual_umask: None
) -> None:
    target = tmp_path / "elsewhere.db"
    link = tmp_path / "ledger.db"
    link.symlink_to(target)
    private_sqlite_file(link)
    assert link.is_symlink() and not target.exists()
