"""The ``ledger`` command line: one module per sub-command, each with its ``add_parser``
(which names the ``run`` it dispatches to) and its ``run(settings, args)``.

ledger serve [--host H] [--port P] [--no-projections]
ledger worker
ledger projections status | rebuild [NAME ...]
ledger escrow trial-balance | export --format csv|ndjson [--output FILE]
ledger replay --as-of TIME
ledger audit verify [--digest POSITION:HASH] | digest | export --format ndjson|csv [--until TIME]
ledger dispute ORDER_ID
ledger token --sub USER_ID [--role ROLE ...] [--hours N]
ledger console-link --sub USER_ID --role support|auditor|admin [--minutes N]
ledger demo [--if-empty] [--host H] [--port P]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from api.cli import (
    audit,
    console_link,
    demo,
    dispute,
    escrow,
    projections,
    replay,
    serve,
    token,
    worker,
)
from api.cli.common import console
from ledger.settings import Settings, SettingsError, load_settings

Command = Callable[[Settings, argparse.Namespace], int]
SUBCOMMANDS = (
    serve,
    worker,
    projections,
    escrow,
    replay,
    audit,
    dispute,
    token,
    console_link,
    demo,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger", description="Gig Ledger")
    commands = parser.add_subparsers(dest="command", required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        console.print(str(error), markup=False)
        return 2
    run: Command = args.run
    return run(settings, args)
