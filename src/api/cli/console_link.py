"""``ledger console-link --sub ID --role support|auditor|admin [--minutes 5]``: a one-time
sign-in link to the staff console, signed with this installation's key.

The link is good once and for ``--minutes`` (5 by default, 60 at most); opening it signs the
person in for a session of the console (``api.console.sessions``). It points at the public
URL, or in development at ``--host``/``--port``, as ``ledger demo``'s links do.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from urllib.parse import quote

from api.cli.common import Subcommands, address_arguments, console, served_at
from api.console.sessions import DEFAULT_TICKET_LIFE, STAFF_ROLES, issue_ticket
from api.http.auth import signing_key
from ledger.clock import utc_now
from ledger.settings import Settings


def add_parser(commands: Subcommands) -> None:
    link = commands.add_parser("console-link", help="print a one-time sign-in link to the console")
    link.add_argument("--sub", required=True, help="the staff member's user id")
    link.add_argument("--role", required=True, choices=sorted(STAFF_ROLES))
    link.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_TICKET_LIFE.total_seconds() / 60,
        help="how long the link may wait to be opened (default 5, at most 60)",
    )
    address_arguments(link)
    link.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        life = timedelta(minutes=args.minutes)
        print(sign_in_link(settings, args.host, args.port, args.sub, args.role, life))
    except (ValueError, OverflowError) as error:
        console.print(str(error), markup=False)
        return 2
    return 0


def sign_in_link(
    settings: Settings, host: str, port: int, subject: str, role: str, life: timedelta
) -> str:
    """The one-time sign-in URL for ``subject`` as ``role`` (``ledger demo`` prints one too).

    Raises: ValueError (see ``issue_ticket``), or when there is no local key.
    """
    key = signing_key(settings)
    if key is None:
        raise ValueError(
            "this installation signs staff in through its identity provider"
            f" ({settings.public_url}console/sign-in); set LEDGER_AUTH_SECRET for sign-in links"
        )
    ticket = issue_ticket(key, subject, role, utc_now(), life)
    base = str(served_at(settings, host, port).public_url).rstrip("/")
    return f"{base}/console/login?ticket={quote(ticket)}"
