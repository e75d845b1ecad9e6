"""CPU per request of the app itself, driven in-process (prints figures; not a test).

    .venv/bin/python -m bench.inprocess [--requests 4000] [--clients 16] [--rounds 2]
        [--only healthz|orders|both] [--backend postgres|sqlite]

The app ``ledger serve`` runs (``create_app``, its lifespan, projections and writers in their
threads) is called through ASGI by 16 concurrent clients on one event loop, without sockets,
uvicorn or a load generator: what is left is the app's own work. For ``GET /healthz`` and for
keyed ``POST /v1/orders`` it prints, per request, the CPU of the event loop's thread and of
the whole process (every thread), in rounds that alternate the two.

On a shared machine these times move with whatever else loads it, and the order path (which
waits on memory) more than ``/healthz`` (``docs/scaling.md``). To compare two versions of the
code by a count that does not move, count instructions with valgrind, once with
``--requests 0`` (start-up and warm-up only) and once with some: the difference divided by
the requests is the instructions per request, every thread included::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m bench.inprocess --only orders --rounds 1 --requests 800
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from starlette.types import ASGIApp, Message

from api.http.app import create_app
from api.http.auth import Authenticator
from bench.http import PACKAGE
from bench.stores import store_url
from ledger.settings import load_settings

WARM_UP = 50
"""Requests per client before the rounds: the caches, the prepared statements and the
read models' tables are then what a running service has."""


async def call(app: ASGIApp, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    """One request through the ASGI interface; returns the status and the body as JSON.

    Not httpx's ``ASGITransport``: its own work runs on the same thread and would be counted
    as the app's (measured on a bare Starlette route: 646 µs a request through it, 177 µs
    through this)."""
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], json.loads(answer["body"] or b"null")


async def measure(app: ASGIApp, args: argparse.Namespace, secret: str) -> None:
    auth = Authenticator(secret)
    freelancer = {
        "authorization": f"Bearer {auth.issue('bench-freelancer')}",
        "content-type": "application/json",
    }
    gig_body = json.dumps({"title": "Bench", "packages": [PACKAGE]}).encode()
    status, gig = await call(app, "POST", "/v1/gigs", freelancer, gig_body)
    assert status == 201, gig
    client = {
        "authorization": f"Bearer {auth.issue('bench-client')}",
        "content-type": "application/json",
    }
    order = json.dumps({"gigId": gig["id"], "packageId": PACKAGE["packageId"]}).encode()
    keys = itertools.count()

    async def orders() -> None:
        headers = {**client, "idempotency-key": f"bench-{next(keys)}"}
        status, answer = await call(app, "POST", "/v1/orders", headers, order)
        assert status == 201, answer

    async def healthz() -> None:
        status, answer = await call(app, "GET", "/healthz", {}, b"")
        assert status == 200, answer

    kinds: dict[str, Callable[[], Awaitable[None]]] = {"healthz": healthz, "orders": orders}
    chosen = list(kinds) if args.only == "both" else [args.only]
    each = args.requests // args.clients

    async def run(request: Callable[[], Awaitable[None]], count: int) -> None:
        async def client_loop() -> None:
            for _ in range(count):
                await request()

        await asyncio.gather(*(client_loop() for _ in range(args.clients)))

    for name in chosen:
        await run(kinds[name], WARM_UP)
    for round_ in range(1, args.rounds + 1):
        for name in chosen:
            if each == 0:
                continue
            loop, process, wall = time.thread_time(), time.process_time(), time.perf_counter()
            await run(kinds[name], each)
            n = each * args.clients
            print(
                f"round {round_}  {name:<8} {n:>6,} requests"
                f"  event loop {(time.thread_time() - loop) / n * 1e6:7.1f} µs"
                f"  process {(time.process_time() - process) / n * 1e6:7.1f} µs"
                f"  wall {(time.perf_counter() - wall) / n * 1e6:7.1f} µs  (per request)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per round and kind")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=("healthz", "orders", "both"), default="both")
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    secret = secrets.token_urlsafe(48)
    with store_url(args.backend) as url, tempfile.TemporaryDirectory() as var:
        settings = load_settings(
            LEDGER_DATABASE_URL=url, LEDGER_VAR_DIR=var, LEDGER_AUTH_SECRET=secret, _env_file=None
        )
        app = create_app(settings)

        async def session() -> None:
            async with app.router.lifespan_context(app):
                await measure(app, args, secret)

        uvloop.run(session())


if __name__ == "__main__":
    main()
