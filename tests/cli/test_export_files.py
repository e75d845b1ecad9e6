"""``ledger escrow export`` and ``ledger audit export`` with ``--output`` (issue 18): the file
is created 0600, an existing one is replaced only with ``--force``, and a symlink is never
followed, with or without it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.settings import Settings
from tests.cli.conftest import run_cli

EXPORTS = {
    "escrow": ("escrow", "export", "--format", "csv"),
    "audit": ("audit", "export", "--format", "csv"),
}
HEADERS = {"escrow": "entry_id,position,", "audit": "position,"}
"""How each CSV export begins, even with nothing to export."""


@pytest.fixture(params=list(EXPORTS))
def export(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return EXPORTS[request.param]


def header(export: tuple[str, ...]) -> str:
    return HEADERS[export[0]]


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # which would leave a new file 0644
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_new_export_file_is_private(
    cli_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    export: tuple[str, ...],
) -> None:
    target = tmp_path / "out.csv"
    code, out, err = run_cli(capsys, *export, "--output", str(target))
    assert (code, out) == (0, ""), err
    assert "exported" in err
    assert target.read_text().startswith(header(export))
    assert oct(mode(target)) == "0o600"


def test_an_existing_file_is_kept_without_force_and_replaced_with_it(
    cli_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    export: tuple[str, ...],
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("keep me\n")
    code, out, err = run_cli(capsys, *export, "--output", str(target))
    assert (code, out) == (1, "")
    assert "exists" in err and "--force" in err and "Traceback" not in err
    assert target.read_text() == "keep me\n"

    code, _, err = run_cli(capsys, *export, "--output", str(target), "--force")
    assert code == 0, err
    assert target.read_text().startswith(header(export))
    assert "keep me" not in target.read_text()


@pytest.mark.parametrize("force", [False, True], ids=["without_force", "with_force"])
@pytest.mark.parametrize("dangling", [False, True], ids=["to_a_file", "dangling"])
def test_a_symlink_is_never_followed(
    cli_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    export: tuple[str, ...],
    force: bool,
    dangling: bool,
) -> None:
    """A link planted where the export goes must not make it overwrite (or create) the
    file the link points to."""
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious\n")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    argv = [*export, "--output", str(link), *(["--force"] if force else [])]
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (1, "")
    assert "Traceback" not in err and str(link) in err
    assert link.is_symlink()
    if dangling:
        assert not victim.exists()
    else:
        assert victim.read_text() == "precious\n"
    if force:
        assert "symbolic link" in err
