"""``ledger token --sub USER_ID [--role ROLE ...] [--hours N]``: a bearer token signed with this
installation's key, for development and operators."""

from __future__ import annotations

import argparse
from datetime import timedelta

from api.cli.common import Subcommands, console
from api.http.auth import Authenticator, signing_key
from ledger.actors import USER_ROLES
from ledger.settings import Settings


def add_parser(commands: Subcommands) -> None:
    token = commands.add_parser("token", help="print a bearer token for a user")
    token.add_argument("--sub", required=True, help="the user id the token speaks for")
    token.add_argument(
        "--role",
        action="append",
        choices=sorted(USER_ROLES),
        help="a role of the token (repeatable; default: user)",
    )
    token.add_argument("--hours", type=float, default=12.0, help="validity (default: 12)")
    token.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.hours <= 0:
        console.print("--hours must be positive")
        return 2
    try:
        token = Authenticator(signing_key(settings)).issue(
            args.sub, args.role or ["user"], timedelta(hours=args.hours)
        )
    except ValueError as error:
        console.print(str(error), markup=False)
        return 2
    print(token)
    return 0
