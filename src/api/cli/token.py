"""``ledger token --sub USER_ID [--role ROLE ...] [--hours N]``: a bearer token signed with this
installation's key, for development and operators. Valid ``LEDGER_AUTH_MAX_TOKEN_HOURS`` (24) at
most: the API refuses any token valid for longer."""

from __future__ import annotations

import argparse
import math
from datetime import timedelta

from api.cli.common import Subcommands, console
from api.http.auth import Authenticator
from ledger.actors import USER_ROLES
from ledger.settings import Settings

DEFAULT_HOURS = 12.0


def add_parser(commands: Subcommands) -> None:
    token = commands.add_parser("token", help="print a bearer token for a user")
    token.add_argument("--sub", required=True, help="the user id the token speaks for")
    token.add_argument(
        "--role",
        action="append",
        choices=sorted(USER_ROLES),
        help="a role of the token (repeatable; default: user)",
    )
    token.add_argument(
        "--hours",
        type=float,
        help="validity (default: 12, or LEDGER_AUTH_MAX_TOKEN_HOURS if less; at most that)",
    )
    token.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    cap = settings.auth_max_token_hours
    hours: float = min(DEFAULT_HOURS, cap) if args.hours is None else args.hours
    if not math.isfinite(hours) or hours <= 0:
        console.print("--hours must be positive")
        return 2
    if hours > cap:
        console.print(
            f"--hours {hours:g} is too long: tokens are valid {cap} hours at most "
            "(LEDGER_AUTH_MAX_TOKEN_HOURS), and the API refuses any token valid for longer",
            markup=False,
        )
        return 2
    try:
        token = Authenticator.for_settings(settings).issue(
            args.sub, args.role or ["user"], timedelta(hours=hours)
        )
    except ValueError as error:
        console.print(str(error), markup=False)
        return 2
    print(token)
    return 0
