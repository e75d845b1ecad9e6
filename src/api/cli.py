"""The ``ledger`` command line: one sub-command per operator task.

ledger serve [--host H] [--port P] [--no-projections]
ledger worker
ledger projections status
ledger projections rebuild [NAME ...]
ledger books trial-balance
ledger books export --format csv|ndjson [--output FILE]
ledger replay --as-of TIME
ledger audit verify [--digest POSITION:HASH] | digest | export --format ndjson|csv [--until TIME]
ledger dispute ORDER_ID
ledger token --sub USER_ID [--role ROLE ...] [--hours N]
ledger demo [--if-empty]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from api import audit_cli
from api.idempotency import IdempotencyStore
from api.replay_cli import as_of_time
from api.timers import build_ticker
from ledger.actors import USER_ROLES
from ledger.bootstrap import build_ledger
from ledger.clock import utc_now
from ledger.settings import Settings, SettingsError, load_settings
from projections.queries import ReadModels
from projections.registry import build_runner
from projections.runner import ProjectionRunner

console = Console(stderr=True)
Command = Callable[[Settings, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger", description="Gig Ledger")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API (and the projections)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--no-projections", action="store_true", help="leave the projections to `ledger worker`"
    )
    commands.add_parser("worker", help="run the projections and timers, without the API")
    projections = commands.add_parser("projections", help="inspect or rebuild read models")
    actions = projections.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="each projection's position and lag")
    rebuild = actions.add_parser("rebuild", help="drop read models and replay every event")
    rebuild.add_argument("names", nargs="*", help="projections to rebuild (default: all)")
    books = commands.add_parser("books", help="the escrow ledger, for auditors")
    books_actions = books.add_subparsers(dest="action", required=True)
    books_actions.add_parser("trial-balance", help="accounts and totals; exit 1 if unbalanced")
    export = books_actions.add_parser("export", help="every journal entry, oldest first")
    export.add_argument("--format", choices=("csv", "ndjson"), required=True)
    export.add_argument("--output", type=Path, help="a file to write (default: stdout)")
    audit_cli.add_parser(commands)
    dispute = commands.add_parser("dispute", help="an order's whole story, event by event")
    dispute.add_argument("order_id", help="the order's id")
    replay = commands.add_parser("replay", help="the read models as they were at a past time")
    replay.add_argument(
        "--as-of", required=True, type=as_of_time, metavar="TIME", help="ISO 8601, with zone"
    )
    token = commands.add_parser("token", help="print a bearer token for a user")
    token.add_argument("--sub", required=True, help="the user id the token speaks for")
    token.add_argument(
        "--role",
        action="append",
        choices=sorted(USER_ROLES),
        help="a role of the token (repeatable; default: user)",
    )
    token.add_argument("--hours", type=float, default=12.0, help="validity (default: 12)")
    demo = commands.add_parser("demo", help="create demo gigs and orders; print tokens to try")
    demo.add_argument(
        "--if-empty", action="store_true", help="only when the store has no events yet"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        console.print(str(error), markup=False)
        return 2
    command: Command = {
        "serve": _serve,
        "worker": _worker,
        "projections": _projections,
        "books": _books,
        "replay": _replay,
        "audit": lambda settings, args: audit_cli.run(settings, args, console),
        "dispute": _dispute,
        "token": _token,
        "demo": _demo,
    }[args.command]
    return command(settings, args)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app

    app = create_app(settings, run_projections=not args.no_projections)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    """Apply projections until SIGTERM or SIGINT, then finish the batch in hand and stop."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with build_ledger(settings) as ledger:
        runner = build_runner(ledger)
        idempotency = IdempotencyStore(runner.db, utc_now)
        idempotency.setup()
        ticker = build_ticker(ledger, ReadModels(runner.db), settings, utc_now, idempotency)
        runner.start()
        ticker.start()
        console.print(
            f"worker running: {', '.join(runner.projections)};"
            " timers: payment expiry, funds clearance, idempotency keys"
        )
        stopping.wait()
        ticker.stop()
        runner.stop()
    console.print("worker stopped")
    return 0


def _projections(settings: Settings, args: argparse.Namespace) -> int:
    with build_ledger(settings) as ledger:
        runner = build_runner(ledger)
        try:
            if args.action == "status":
                return _print_status(runner)
            return _rebuild(runner, args.names or list(runner.projections))
        finally:
            runner.stop()


def _print_status(runner: ProjectionRunner) -> int:
    table = Table("projection", "position", "head", "lag", "applied here", "last error")
    for status in runner.status():
        table.add_row(
            status.name,
            str(status.position),
            str(status.head),
            str(status.lag),
            "yes" if status.leading else "no (another process)",
            status.error or "",
        )
    Console().print(table)
    return 0


def _rebuild(runner: ProjectionRunner, names: list[str]) -> int:
    unknown = set(names) - set(runner.projections)
    if unknown:
        console.print(f"unknown projections: {', '.join(sorted(unknown))}", markup=False)
        return 2
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"rebuilding {', '.join(names)}", total=None)

        def show(position: int, head: int) -> None:
            progress.update(task, completed=position, total=head)

        try:
            events = runner.rebuild(names, show)
        except RuntimeError as error:
            console.print(str(error))
            return 1
    seconds = time.perf_counter() - started
    rate = events / seconds if seconds else 0.0
    console.print(f"rebuilt: {events:,} events applied in {seconds:.2f} s ({rate:,.0f} events/s)")
    return 0


def _books(settings: Settings, args: argparse.Namespace) -> int:
    from api.books import export, open_books, print_trial_balance
    from api.offline import export_to

    with open_books(settings, console) as books:
        if args.action == "trial-balance":
            return print_trial_balance(books, Console())
        return export_to(
            args.output, lambda out: export(books, args.format, out), "journal entries", console
        )


def _dispute(settings: Settings, args: argparse.Namespace) -> int:
    from api.dispute import print_dispute

    return print_dispute(settings, args.order_id, Console(), console)


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from api.replay_cli import replay

    return replay(settings, args.as_of, Console(), console)


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth import Authenticator, signing_key

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


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from api.auth import Authenticator, signing_key
    from api.demo import CLIENT, FREELANCER, seed

    with build_ledger(settings) as ledger:
        if args.if_empty and ledger.recorder.max_notification_id():
            console.print("the store already holds events: no demo data added")
            return 0
        demo = seed(ledger)
    auth = Authenticator(signing_key(settings))
    base = str(settings.public_url).rstrip("/")
    out = Console(soft_wrap=True)
    out.print(f"[bold]Demo data[/bold] (up to position {demo.position}); gig {demo.gig_id}")
    for label, order_id in demo.orders.items():
        out.print(f"  {label:<17} {base}/v1/orders/{order_id}")
    out.print("\n[bold]Tokens[/bold] (12 h):")
    for sub, role in ((CLIENT.id, "user"), (FREELANCER.id, "user"), ("demo-support", "support")):
        out.print(f"  {sub:<16} {auth.issue(sub, [role])}")
    out.print(f"\nTry:  curl -H 'Authorization: Bearer <demo-client token>' {base}/v1/orders")
    out.print(f"Docs: {base}/docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
