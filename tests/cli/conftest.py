"""The ``ledger`` command line run in-process (``api.cli.main``), each test on a SQLite store
of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger.settings import Settings, load_settings


@pytest.fixture
def cli_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """For ``api.cli.main`` run in-process: only this test's variables configure it (no
    ``.env``, nothing from the shell), a SQLite store of its own, a wide terminal."""
    for name in list(os.environ):
        if name.startswith(("LEDGER_", "YOUCANPAY_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("LEDGER_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COLUMNS", "200")
    return load_settings()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``ledger ARGV…`` in-process: its exit code, stdout and stderr."""
    from api.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
