"""``ledger audit``: the tamper-evident chain and the raw event log, for auditors.

ledger audit verify [--digest POSITION:HASH]
ledger audit digest
ledger audit export --format ndjson|csv [--until TIME] [--output FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Iterable
from typing import Any, TextIO

from api.cli.common import (
    Subcommands,
    add_export,
    caught_up,
    console,
    export_to,
    moment_argument,
    progress_bar,
)
from ledger.settings import Settings
from projections.audit.verify import chain_head, every_event, verify_chain, verify_digest

CSV_COLUMNS = ("position", "stream", "version", "type", "at", "data")
_DIGEST = re.compile(r"^(\d{1,18}):([0-9a-fA-F]{64})$")


def digest_argument(value: str) -> tuple[int, str]:
    """``POSITION:HASH`` as ``ledger audit digest`` prints it."""
    match = _DIGEST.match(value.strip())
    if match is None:
        raise argparse.ArgumentTypeError("a digest is POSITION:HASH (64 hex digits)")
    return int(match[1]), match[2].lower()


def add_parser(commands: Subcommands) -> None:
    audit = commands.add_parser("audit", help="the tamper-evident chain and the raw log")
    audit.set_defaults(run=run)
    actions = audit.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="recompute the chain from the raw store")
    verify.add_argument(
        "--digest",
        type=digest_argument,
        metavar="POSITION:HASH",
        help="check the store against a digest kept outside, instead of the chain table",
    )
    actions.add_parser("digest", help="print the chain's head as POSITION:HASH, to keep")
    export = add_export(actions, "every event, in log order, streamed", ("ndjson", "csv"))
    export.add_argument("--until", type=moment_argument, metavar="TIME", help="events up to")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when the check passes (or the export is written), 1 when it does not."""
    with caught_up(settings, console, "audit") as (ledger, db):
        if args.action == "digest":
            position, digest = chain_head(db)
            print(f"{position}:{digest}")
            return 0
        if args.action == "verify":
            with progress_bar(console, "verifying") as show:
                if args.digest is None:
                    result = verify_chain(ledger, db, show)
                else:
                    position, digest = args.digest
                    result = verify_digest(ledger, db, position, digest, show)
            return _report(result.ok, result.events, result.first_mismatch)
        with progress_bar(console, "exporting") as show:
            events = every_event(ledger, args.until, show)
            return export_to(args, lambda out: _write(events, args.format, out), "events")


def _report(ok: bool, events: int, mismatch: int | None) -> int:
    if ok:
        console.print(f"verified: {events:,} events, the chain holds")
        return 0
    console.print(f"TAMPERED: the first event that does not match is at position {mismatch}")
    return 1


def _write(events: Iterable[dict[str, Any]], form: str, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n") if form == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    count = 0
    for record in events:
        count += 1
        if writer is None:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
        else:
            data = json.dumps(record["data"], separators=(",", ":"))
            writer.writerow([*(record[column] for column in CSV_COLUMNS[:-1]), data])
    return count
