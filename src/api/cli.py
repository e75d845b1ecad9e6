"""The ``ledger`` command line."""

from __future__ import annotations

import argparse
import sys

from ledger.settings import Settings, SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ledger", description="Gig Ledger")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    return 2


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from api.main import create_app

    uvicorn.run(create_app(settings), host=host, port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
