"""HTTP benchmark (prints figures; not a test).

    .venv/bin/python -m bench.http [--connections 16] [--seconds 10]

Against a fresh PostgreSQL database, in one run on one machine, with ``wrk`` (Debian
package ``wrk``) as the load generator, at the same concurrency:

1. ``POST /v1/orders`` on ``ledger serve`` (auth, validation, a unique ``Idempotency-Key``
   per request, projections running in the same process): orders/s, p50, p99, errors.
2. The same through a *bare* FastAPI endpoint that saves one event per request with the
   same library on the same database: the ceiling the store allows.
3. ``GET /healthz`` on ``ledger serve``: the framework's own ceiling.
4. ``pgbench`` inserting one row per transaction: the database's ceiling.

Target (issue #4): >= 600 orders/s at 16 clients with p99 <= 50 ms, the whole stack costing
less than 10% against the bare endpoint.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from api.auth import Authenticator

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PACKAGE = {
    "packageId": "basic",
    "price": 100,
    "deliveryDays": 3,
    "revisions": 1,
    "description": "b",
}
READY = re.compile(r"Uvicorn running on (http://\S+)")
LUA = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
function request()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer %(token)s"
  headers["Idempotency-Key"] = "bench-" .. tid .. "-" .. counter
  return wrk.format("POST", "%(path)s", headers, '%(body)s')
end
"""


@contextmanager
def database() -> Iterator[str]:
    name = f"ledger_bench_http_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(command: list[str], env: dict[str, str], cwd: Path) -> Iterator[str]:
    """Start an ASGI server process; yield its URL once it says it is running."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if match := READY.search(line):
                # Keep draining the log so the server never blocks on a full pipe.
                subprocess.Popen(["cat"], stdin=process.stderr, stdout=subprocess.DEVNULL)
                yield match[1]
                break
        else:
            raise RuntimeError("the server did not start")
    finally:
        process.terminate()
        process.wait(timeout=15)


def wrk(url: str, connections: int, seconds: int, script: Path | None = None) -> dict[str, float]:
    threads = min(4, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        "errors": float(m[1])
        if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output))
        else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def pgbench(dbname: str, connections: int, seconds: int, workdir: Path) -> float:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{dbname}", autocommit=True) as c:
        c.execute("CREATE TABLE bench_rows (id BIGSERIAL PRIMARY KEY, data TEXT NOT NULL)")
    script = workdir / "insert.sql"
    script.write_text("INSERT INTO bench_rows (data) VALUES ('one event''s worth of text');\n")
    output = subprocess.run(
        ["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", f"-c{connections}",
         f"-j{min(4, connections)}", f"-T{seconds}", "-f", str(script), dbname],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(re.search(r"tps = ([\d.]+)", output)[1])  # type: ignore[index]


def orders_script(url: str, token: str, workdir: Path, name: str) -> Path:
    freelancer = Authenticator(token).issue("bench-freelancer")
    gig = httpx.post(
        f"{url}/v1/gigs",
        json={"title": "Bench", "packages": [PACKAGE]},
        headers={"Authorization": f"Bearer {freelancer}"},
    ).json()
    body = f'{{"gigId": "{gig["id"]}", "packageId": "basic"}}'
    client = Authenticator(token).issue("bench-client")
    script = workdir / f"{name}.lua"
    script.write_text(LUA % {"token": client, "path": "/v1/orders", "body": body})
    return script


def report(label: str, figures: dict[str, float]) -> None:
    print(
        f"{label:<38} {figures['rps']:>9,.0f}/s  p50 {figures['p50']:>6.1f} ms"
        f"  p99 {figures['p99']:>6.1f} ms  non-2xx {figures['errors']:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("pgbench") is None:
        sys.exit("bench.http needs wrk and pgbench (Debian: apt-get install wrk postgresql-client)")
    c, s = args.connections, args.seconds
    secret = secrets.token_urlsafe(48)
    with tempfile.TemporaryDirectory() as tmp, database() as ledger_db, database() as bare_db:
        work = Path(tmp)
        env = {**os.environ, "LEDGER_AUTH_SECRET": secret, "LEDGER_VAR_DIR": str(work / "var")}
        env["LEDGER_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{ledger_db}"
        serve = [sys.executable, "-m", "api.cli", "serve", "--port", "0"]
        print(f"{c} connections, {s} s each, PostgreSQL, one uvicorn process\n")
        with server(serve, env, work) as url:
            script = orders_script(url, secret, work, "orders")
            report("POST /v1/orders (ledger serve)", wrk(url, c, s, script))
            report("GET /healthz (framework ceiling)", wrk(f"{url}/healthz", c, s))
        bare_env = {**env, "BENCH_DATABASE": bare_db}
        bare = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", "0"]
        with server(bare, bare_env, Path.cwd()) as url:
            script = work / "bare.lua"
            script.write_text(LUA % {"token": "-", "path": "/orders", "body": "{}"})
            report("POST /orders (bare, one event/request)", wrk(url, c, s, script))
        tps = pgbench(bare_db, c, s, work)
        print(f"{'pgbench, one INSERT per transaction':<38} {tps:>9,.0f}/s")


if __name__ == "__main__":
    main()
