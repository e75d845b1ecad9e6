"""``ledger serve [--host H] [--port P] [--no-projections]``: the HTTP API, by default with the
projections and timers in the same process (``api.runtime``). In development the public URL
follows the host and port unless ``LEDGER_PUBLIC_URL`` is set (``common.served_at``)."""

from __future__ import annotations

import argparse

from api.cli.common import Subcommands, address_arguments, served_at
from ledger.settings import Settings


def add_parser(commands: Subcommands) -> None:
    serve = commands.add_parser("serve", help="run the HTTP API (and the projections)")
    address_arguments(serve)
    serve.add_argument(
        "--no-projections", action="store_true", help="leave the projections to `ledger worker`"
    )
    serve.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn  # only this command needs the server

    from api.http.app import create_app

    settings = served_at(settings, args.host, args.port)
    app = create_app(settings, run_projections=not args.no_projections)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0
