"""``ledger serve [--host H] [--port P] [--no-projections]``: the HTTP API, by default with the
projections and timers in the same process (``api.runtime``). In development the public URL
follows the host and port unless ``LEDGER_PUBLIC_URL`` is set (``common.served_at``).

With the sandbox gateway it serves only on a loopback address (127.0.0.0/8, ``::1``,
``localhost``) unless ``LEDGER_SANDBOX_ON_PUBLIC_HOST=true``: the sandbox's form marks orders
paid for anyone who can reach it."""

from __future__ import annotations

import argparse
import gc
import ipaddress

from api.cli.common import Subcommands, address_arguments, console, served_at
from ledger.settings import Settings


def add_parser(commands: Subcommands) -> None:
    serve = commands.add_parser("serve", help="run the HTTP API (and the projections)")
    address_arguments(serve)
    serve.add_argument(
        "--no-projections", action="store_true", help="leave the projections to `ledger worker`"
    )
    serve.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    exposed = settings.gateway == "sandbox" and not is_loopback(args.host)
    if exposed and not settings.sandbox_on_public_host:
        console.print(sandbox_refused(args.host), markup=False)
        return 2

    import uvicorn  # only this command needs the server

    from api.http.app import create_app

    settings = served_at(settings, args.host, args.port)
    app = create_app(settings, run_projections=not args.no_projections)
    # What is loaded by now (modules, routes, models) lives as long as the process: it is set
    # aside from the cyclic collector, whose full collections would otherwise walk it again
    # every few seconds under load, holding every request meanwhile (about 90 ms each, measured
    # under bench.http; 10 to 20 ms with it set aside).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reached from this machine only: 127.0.0.0/8, ``::1`` or
    ``localhost``. Any other name may resolve to a public address, so it is not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def sandbox_refused(host: str) -> str:
    return (
        f"ledger serve: refusing to serve the sandbox gateway on {host or 'every interface'},"
        " which is not a loopback address: anyone who can reach the sandbox's payment form can"
        " mark orders paid. Serve on 127.0.0.1 (--host 127.0.0.1), use LEDGER_GATEWAY=youcanpay,"
        " or set LEDGER_SANDBOX_ON_PUBLIC_HOST=true to serve it there all the same."
    )
