"""What the sub-commands share: the console for messages (stderr; what a command prints as
its result goes to stdout), times given with their zone, the store opened with a read model
brought up to the head of the log first, progress bars for long passes over the log, and
exports written to stdout or a file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO, TypeAlias

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.bootstrap import build_ledger
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.db import Database
from projections.registry import build_runner

console = Console(stderr=True)
"""Messages, progress and errors: stderr, so stdout carries only a command's result."""

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What each sub-command's ``add_parser`` adds itself to (``commands.add_parser``)."""

BAR_COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
"""The columns of every progress bar."""


def moment_argument(text: str) -> datetime:
    """A time argument: ISO 8601 with its zone (``2026-01-05T10:00:00Z``, ``…+01:00``).
    A time without one would mean a different moment on every machine."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-01-05T10:00:00Z"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no timezone: add Z (UTC) or an offset such as +01:00"
        )
    return moment


@contextmanager
def caught_up(
    settings: Settings, console: Console, name: str
) -> Iterator[tuple[LedgerApp, Database]]:
    """The ledger and its read-model database, projection ``name`` brought up to the head
    where this process may apply it (else as far as the process applying it has got: said
    so on ``console``)."""
    with build_ledger(settings) as ledger:
        runner = build_runner(ledger)
        try:
            runner.run_once([name])
            status = next(s for s in runner.status() if s.name == name)
            if status.lag:
                console.print(
                    f"the {name} read model is at position {status.position} of {status.head}"
                    " (another process applies it): what follows may be behind",
                    markup=False,
                )
            yield ledger, runner.db
        finally:
            runner.stop()


@contextmanager
def progress_bar(console: Console, description: str) -> Iterator[Callable[[int, int], None]]:
    """A bar on ``console`` and the ``(done, total)`` callback that moves it."""
    with Progress(*BAR_COLUMNS, console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def show(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield show


def export_to(
    output: Path | None, write: Callable[[TextIO], int], what: str, console: Console
) -> int:
    """Run ``write`` on ``output`` (stdout when ``None``) and say how many ``what`` it
    wrote; 0, or 1 when the file cannot be written (a clear line, not a traceback)."""
    if output is None:
        count = write(sys.stdout)
    else:
        try:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = write(out)
        except OSError as error:
            console.print(f"cannot write {output}: {error.strerror}", markup=False)
            return 1
    console.print(f"exported {count:,} {what}")
    return 0
