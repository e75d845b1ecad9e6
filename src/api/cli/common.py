"""What the sub-commands share: the console for messages (stderr; what a command prints as
its result goes to stdout), times given with their zone, the address ``ledger serve`` listens
on and the public URL that follows it, the store opened with a read model brought up to the
head of the log first, progress bars for long passes over the log, and exports written to
stdout or a file."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO, TypeAlias

from pydantic import AnyHttpUrl
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


def add_export(
    actions: Subcommands, help: str, formats: tuple[str, ...]
) -> argparse.ArgumentParser:
    """An ``export`` action: ``--format`` (one of ``formats``), ``--output`` and ``--force``,
    as ``export_to`` writes them."""
    export = actions.add_parser("export", help=help)
    export.add_argument("--format", choices=formats, required=True)
    export.add_argument("--output", type=Path, help="a file to write (default: stdout)")
    export.add_argument(
        "--force", action="store_true", help="replace --output if it exists (never a symlink)"
    )
    return export


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


UNSPECIFIED_HOSTS = frozenset({"0.0.0.0", "::", ""})
"""Hosts that mean every interface: not an address a browser can be sent to."""


def address_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host`` and ``--port``: where ``ledger serve`` listens (see ``served_at``)."""
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--port", type=_port, default=8000, help="default 8000")


def _port(text: str) -> int:
    port = int(text) if text.strip().isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


def served_at(settings: Settings, host: str, port: int) -> Settings:
    """``settings`` with the public URL (payment form, return URLs, printed links) where
    ``ledger serve --host HOST --port PORT`` answers: in development, unless
    ``LEDGER_PUBLIC_URL`` is set. In production, when it is set, or for port 0 (any free
    port: which one is known only once bound), ``settings`` as they are.

    Every interface (``0.0.0.0``, ``::``) is reached from this machine at 127.0.0.1."""
    if (
        settings.environment != "development"
        or "public_url" in settings.model_fields_set
        or port == 0
    ):
        return settings
    address = "127.0.0.1" if host in UNSPECIFIED_HOSTS else host
    if ":" in address:  # an IPv6 address goes in brackets
        address = f"[{address.strip('[]')}]"
    url = AnyHttpUrl(f"http://{address}:{port}")
    return settings.model_copy(update={"public_url": url})


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


EXPORT_MODE = 0o600
"""An export holds the books or the whole log: readable by its writer alone."""


def export_to(args: argparse.Namespace, write: Callable[[TextIO], int], what: str) -> int:
    """Run ``write`` on ``args.output`` (stdout when not given) and say how many ``what``
    it wrote; 0, or 1 when the file cannot be written (a clear line, not a traceback).

    A file is created 0600 and never through a symlink; one that exists already is
    replaced only with ``--force``, and even then a symlink is not followed (``add_export``
    declares both options)."""
    output: Path | None = args.output
    force: bool = args.force
    if output is None:
        count = write(sys.stdout)
    else:
        replace = os.O_TRUNC if force else os.O_EXCL
        flags = os.O_WRONLY | os.O_CREAT | replace | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(output, flags, EXPORT_MODE)
        except FileExistsError:
            console.print(f"{output} exists: add --force to replace it", markup=False)
            return 1
        except OSError as error:
            reason = error.strerror
            if error.errno == errno.ELOOP:
                reason = "it is a symbolic link, which is never followed"
            console.print(f"cannot write {output}: {reason}", markup=False)
            return 1
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as out:
                count = write(out)
        except OSError as error:
            console.print(f"cannot write {output}: {error.strerror}", markup=False)
            return 1
    console.print(f"exported {count:,} {what}")
    return 0
