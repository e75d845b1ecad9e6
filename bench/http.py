"""HTTP benchmark (prints figures; not a test).

    .venv/bin/python -m bench.http [--connections 16] [--seconds 10]
        [--only all|orders|lifecycle|ceilings] [--batching both|on|off]
        [--keys creates|all|none] [--no-projections]

Against fresh PostgreSQL databases, in one run on one machine, with ``wrk`` (Debian package
``wrk``) as the load generator, at the same concurrency, each ``ledger serve`` scenario in a
server process and a database of its own, once with group commit (``LEDGER_GROUP_COMMIT=true``,
``LEDGER_BATCH_*`` as set in the environment, else the defaults) and once without
(``LEDGER_GROUP_COMMIT=false``: one transaction per command), printed side by side:

1. ``POST /v1/orders`` (auth, validation, a unique ``Idempotency-Key`` per request,
   projections running in the same process): orders/s, p50, p99, non-2xx; and what the
   batches looked like: commands per write transaction, read back from the database (the
   events one transaction inserted share its ``xmin``; placing an order is one event).
2. Full lifecycles (``bench/lifecycle.lua``): each of ``--connections`` clients, on its own
   keep-alive connection with its own user, repeatedly places an order, opens its payment,
   pays with the sandbox checkout's paid test card (which delivers the signed webhook
   in-process), has the freelancer deliver (delivering also accepts, so no ``/accept``) and
   completes it; every answer's status is checked, a failure is counted at its step and the
   client starts over with a new order. Lifecycles/s, p50/p99 of a whole lifecycle and of
   each step. ``--keys`` says which steps send an ``Idempotency-Key`` (default: the two that
   create something, placing the order and opening the payment, as a careful front end does).
3. ``GET /healthz`` on ``ledger serve``: the framework's own ceiling.
4. A *bare* FastAPI endpoint that saves one event per request with the same library on the
   same database: the ceiling the store allows, one command per transaction.
5. ``pgbench`` inserting one row per transaction: the database's ceiling.

Each run also says where the CPU went (cores busy on average: the server process, the
PostgreSQL backends of its database, wrk, and the rest of the machine) and what the server
logged (non-2xx statuses, tracebacks), how far behind the projections were at the end, and
which tables its database read whole (scans and rows; a long run shows a scan that grows
with a table).
Each figure is printed to stderr as it is measured, and the whole summary to stdout at the end.

The load generator is wrk in every scenario; the lifecycle's state machine runs in wrk's
LuaJIT, one wrk thread per connection. Measured here (2026-11-24, 2 cores, another test run
sharing the machine): wrk took 0.01-0.02 core at ~100 requests/s (orders, lifecycles) and
0.07 core at ~730 requests/s (``/healthz``), i.e. roughly 0.1-0.2 core per 1,000 requests/s,
printed with every run ("load generator"). A Python client is no alternative on this machine:
``httpx.AsyncClient`` with 16 tasks on 16 keep-alive connections spent 3.2 ms of CPU per
request against a trivial FastAPI endpoint (255 requests/s for 0.8 core).

Targets (issue #9), on PostgreSQL at 16 clients: >= 1,500 orders placed/s with p99 <= 35 ms,
and >= 500 full lifecycles/s; batching on and off side by side. Issue 23 replaced those
absolute figures by ratios measured in this one run, printed last ("Targets (issue 23)"): orders/s
against the bare app and against ``/healthz``, the server's CPU per placed order (its CPU
seconds over the orders the database holds), p99, lifecycles/s against orders/s, and the
server's resident memory after the run (the 100k-order target needs a run that long:
``--only orders --batching on --seconds 500`` at ~200 orders/s).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx
import psycopg

from api.http.auth import Authenticator

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
HERE = Path(__file__).resolve().parent
PACKAGE = {
    "packageId": "basic",
    "price": 100,
    "deliveryDays": 3,
    "revisions": 1,
    "description": "b",
}
READY = re.compile(r"Uvicorn running on (http://\S+)")
ACCESS = re.compile(r'"(?:GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.1" (\d{3})')
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
STEPS = ("place", "payment", "pay", "deliver", "complete")
KEYED = {"creates": ("place", "payment"), "all": ("place", "payment", "deliver", "complete")}
TICK = os.sysconf("SC_CLK_TCK")


# -- processes and databases ----------------------------------------------------------------


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


@dataclass
class Server:
    url: str
    pid: int
    log: Path
    dbname: str | None = None


@contextmanager
def server(
    command: list[str], env: dict[str, str], cwd: Path, log: Path, dbname: str | None = None
) -> Iterator[Server]:
    """Start an ASGI server process; yield it once it says it is running. Its output (uvicorn's
    access lines on stdout, the rest on stderr) goes into ``log``."""
    log.write_text("")
    with log.open("a") as out:  # appending, as stderr's lines are appended to the same file
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.PIPE, text=True
        )
    assert process.stderr is not None
    drain: subprocess.Popen[bytes] | None = None
    try:
        with log.open("a") as out:
            for line in process.stderr:
                out.write(line)
                if match := READY.search(line):
                    break
            else:
                raise RuntimeError(f"the server did not start; see {log}")
            # Keep draining stderr so the server never blocks on a full pipe.
            drain = subprocess.Popen(["cat"], stdin=process.stderr, stdout=out)
        yield Server(match[1], process.pid, log, dbname)
    finally:
        process.terminate()
        process.wait(timeout=15)
        if drain is not None:
            drain.wait(timeout=15)


# -- where the CPU goes ----------------------------------------------------------------------


def _proc_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds, all threads, of a live process; zeros if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def _proc_cpu(pid: int) -> float:
    return sum(_proc_times(pid))


def _machine() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


def _backends(dbname: str) -> dict[int, float]:
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        pids = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,)
        ).fetchall()
    return {pid: _proc_cpu(pid) for (pid,) in pids}


@dataclass
class Usage:
    """Cores busy on average during one measurement."""

    server: float = 0.0
    server_system: float = 0.0
    postgres: float = 0.0
    generator: float = 0.0
    machine: float = 0.0
    steal: float = 0.0

    def line(self) -> str:
        rest = max(0.0, self.machine - self.server - self.postgres - self.generator)
        stolen = f", stolen by the hypervisor {self.steal:.2f}" if self.steal >= 0.05 else ""
        return (
            f"cpu cores: server {self.server:.2f} ({self.server_system:.2f} of it in the kernel),"
            f" its postgres backends {self.postgres:.2f},"
            f" load generator {self.generator:.2f}, rest of machine {rest:.2f}"
            f" (of {os.cpu_count()}){stolen}"
        )


@contextmanager
def usage(srv: Server | None) -> Iterator[Usage]:
    """What the server, its database's backends, the load generator (this process's waited-for
    children) and the whole machine used while the block ran."""
    used = Usage()
    wall, (busy, steal) = time.monotonic(), _machine()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_user, server_system = _proc_times(srv.pid) if srv else (0.0, 0.0)
    backends = _backends(srv.dbname) if srv and srv.dbname else {}
    yield used
    seconds = time.monotonic() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    generator = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    used.generator = generator / seconds
    busy_after, steal_after = _machine()
    used.machine, used.steal = (busy_after - busy) / seconds, (steal_after - steal) / seconds
    if srv:
        user, system = _proc_times(srv.pid)
        used.server = (user + system - server_user - server_system) / seconds
        used.server_system = (system - server_system) / seconds
        if srv.dbname:
            now = _backends(srv.dbname)
            used.postgres = sum(cpu - backends.get(pid, 0.0) for pid, cpu in now.items()) / seconds


# -- wrk -------------------------------------------------------------------------------------


def _wrk(url: str, connections: int, seconds: int, threads: int, script: Path | None) -> str:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    return subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout


def wrk(url: str, connections: int, seconds: int, script: Path | None = None) -> dict[str, float]:
    output = _wrk(url, connections, seconds, min(4, connections), script)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output)[1]),  # type: ignore[index]
        "errors": float(m[1])
        if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output))
        else 0,
        "socket_errors": sum(
            int(n)
            for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", _socket_line(output))
        ),
    }


def _socket_line(output: str) -> str:
    match = re.search(r"Socket errors:.*", output)
    return match[0] if match else ""


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def percentile(values: list[float], q: float) -> float:
    """Nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


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


# -- the scenarios ---------------------------------------------------------------------------


def make_gig(url: str, secret: str, freelancer: str) -> str:
    token = Authenticator(secret).issue(freelancer)
    answer = httpx.post(
        f"{url}/v1/gigs",
        json={"title": "Bench", "packages": [PACKAGE]},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()
    return str(answer.json()["id"])


def orders_script(url: str, secret: str, workdir: Path, name: str) -> Path:
    gig = make_gig(url, secret, "bench-freelancer")
    body = f'{{"gigId": "{gig}", "packageId": "basic"}}'
    client = Authenticator(secret).issue("bench-client")
    script = workdir / f"{name}.lua"
    script.write_text(LUA % {"token": client, "path": "/v1/orders", "body": body})
    return script


def lifecycle_script(url: str, secret: str, clients: int, keys: str, workdir: Path) -> Path:
    auth = Authenticator(secret)
    gig = make_gig(url, secret, "bench-freelancer")
    tokens = ", ".join(f'"{auth.issue(f"bench-client-{i}")}"' for i in range(1, clients + 1))
    keyed = ", ".join(f"[{STEPS.index(step) + 1}] = true" for step in KEYED.get(keys, ()))
    prelude = (
        f"CLIENTS = {{{tokens}}}\n"
        f'FREELANCER = "{auth.issue("bench-freelancer")}"\n'
        f'GIG = "{gig}"\n'
        f"KEYED = {{{keyed}}}\n"
    )
    script = workdir / "lifecycle.lua"
    script.write_text(prelude + (HERE / "lifecycle.lua").read_text())
    return script


@dataclass
class Lifecycles:
    completed: int
    seconds: float
    durations: list[float]
    steps: dict[str, list[float]]
    failures: dict[str, int]
    errors: list[str]
    requests: int = field(init=False)

    def __post_init__(self) -> None:
        self.requests = sum(len(times) for times in self.steps.values())


def lifecycles(url: str, clients: int, seconds: int, script: Path) -> Lifecycles:
    output = _wrk(url, clients, seconds, clients, script)
    lines: dict[str, str] = {}
    steps: dict[str, list[float]] = {}
    errors: list[str] = []
    for line in output.splitlines():
        if line.startswith("LC error "):
            errors.append(line.removeprefix("LC error "))
        elif line.startswith("LC step "):
            name, _, values = line.removeprefix("LC step ").partition(" ")
            steps[name] = _floats(values)
        elif line.startswith("LC "):
            key, _, value = line[3:].partition(" ")
            lines[key] = value
    if "completed" not in lines:
        raise RuntimeError(f"the lifecycle script reported nothing:\n{output}")
    failures = dict(zip(STEPS, (int(n) for n in lines["failures"].split(",")), strict=True))
    if socket := _socket_line(output):
        errors.append(socket)
    return Lifecycles(
        int(lines["completed"]),
        float(lines["seconds"]),
        _floats(lines["durations"]),
        steps,
        failures,
        errors,
    )


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def counted(dbname: str, query: str) -> list[int]:
    """The counts ``query`` selects from a scenario's database."""
    url = f"postgresql://postgres@127.0.0.1:5432/{dbname}"
    with psycopg.connect(url, autocommit=True) as conn:
        return [n for (n,) in conn.execute(query).fetchall()]


def placed(dbname: str) -> int:
    """Orders the database holds: what the server's CPU is divided by."""
    topic = "ledger.domain.order:Order.OrderPlaced"
    return counted(dbname, f"SELECT count(*) FROM ledger_events WHERE topic = '{topic}'")[0]


def scans(dbname: str) -> str:
    """The tables of a scenario's database read whole, most rows first: how many scans and
    rows. A scan repeated on a table that grows is how a plan that stopped using its index
    shows (the guarded reads' did, docs/scaling.md). The backends report their counts at most
    once a second, so the last second's may be missing."""
    time.sleep(1.5)
    url = f"postgresql://postgres@127.0.0.1:5432/{dbname}"
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables"
            " WHERE seq_tup_read > 0 ORDER BY seq_tup_read DESC LIMIT 3"
        ).fetchall()
    read = "; ".join(f"{table} {n:,} scans, {rows:,} rows" for table, n, rows in found)
    return f"tables read whole: {read or 'none'}"


def rss_mb(pid: int) -> float:
    """The server process's resident memory now, in MB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def batches(dbname: str) -> list[int]:
    """Events per write transaction (those of one transaction share its ``xmin``), but for
    the gig's."""
    return counted(
        dbname,
        "SELECT count(*) FROM ledger_events WHERE topic NOT LIKE 'ledger.domain.gig:%'"
        " GROUP BY xmin::text::bigint",
    )


def projection_lag(url: str) -> int:
    """The largest projection lag /metrics shows now (events)."""
    text = httpx.get(f"{url}/metrics").text
    lags = re.findall(r"^ledger_projection_lag_events\{[^}]*\} ([\d.e+]+)$", text, re.M)
    return int(max((float(v) for v in lags), default=0))


def log_summary(srv: Server) -> str:
    """What the server logged: non-2xx statuses by route shape, and tracebacks."""
    text = srv.log.read_text(errors="replace")
    bad: Counter[str] = Counter()
    for path, status in ACCESS.findall(text):
        if not status.startswith("2"):
            shape = re.sub(r"sbx_[0-9a-f_]+|[0-9a-f-]{32,36}", "{id}", path)
            bad[f"{status} {shape}"] += 1
    tracebacks = text.count("Traceback")
    parts = [f"{n} x {what}" for what, n in bad.most_common(5)]
    if tracebacks:
        parts.append(f"{tracebacks} tracebacks")
    return "server log: " + ("; ".join(parts) if parts else "no non-2xx, no tracebacks")


# -- the run ---------------------------------------------------------------------------------

LABEL = {True: "group commit on", False: "group commit off"}


@dataclass
class Run:
    """One invocation: its settings, and what it measured so far."""

    connections: int
    seconds: int
    work: Path
    env: dict[str, str]
    secret: str
    projections: bool
    keys: str
    orders: dict[bool, dict[str, float]] = field(default_factory=dict)
    cycles: dict[bool, Lifecycles] = field(default_factory=dict)
    ceilings: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @contextmanager
    def ledger(self, batching: bool, name: str) -> Iterator[Server]:
        """``ledger serve`` on a fresh database, with group commit on or off."""
        with database() as dbname:
            env = {**self.env, "LEDGER_GROUP_COMMIT": "true" if batching else "false"}
            env["LEDGER_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{dbname}"
            serve = [sys.executable, "-m", "api.cli", "serve", "--port", "0"]
            if not self.projections:
                serve.append("--no-projections")
            with server(serve, env, self.work, self.work / f"{name}.log", dbname) as srv:
                yield srv

    def place_orders(self, batching: bool, healthz: bool) -> None:
        c, s = self.connections, self.seconds
        with self.ledger(batching, f"orders-{batching}") as srv:
            assert srv.dbname is not None
            if healthz:
                with usage(srv) as used:
                    self.ceilings["healthz"] = wrk(f"{srv.url}/healthz", c, s)
                report("GET /healthz (framework ceiling)", self.ceilings["healthz"])
                self.notes.append(f"  healthz: {used.line()}")
            script = orders_script(srv.url, self.secret, self.work, "orders")
            with usage(srv) as used:
                figures = wrk(srv.url, c, s, script)
            figures["server_cores"] = used.server
            figures["placed"] = placed(srv.dbname)
            figures["rss_mb"] = rss_mb(srv.pid)
            sizes = batches(srv.dbname)
            figures["batch_mean"] = statistics.fmean(sizes) if sizes else 0.0
            figures["batch_p50"] = percentile([float(n) for n in sizes], 50)
            figures["batch_max"] = max(sizes, default=0)
            figures["txn_rate"] = len(sizes) / s
            self.orders[batching] = figures
            report(f"POST /v1/orders, {LABEL[batching]}", figures)
            self.notes.append(
                f"  orders, {LABEL[batching]}: {used.line()}; projections"
                f" {projection_lag(srv.url)} events behind at the end; {log_summary(srv)};"
                f" {scans(srv.dbname)}"
            )

    def run_lifecycles(self, batching: bool) -> None:
        c, s = self.connections, self.seconds
        with self.ledger(batching, f"lifecycle-{batching}") as srv:
            assert srv.dbname is not None
            script = lifecycle_script(srv.url, self.secret, c, self.keys, self.work)
            with usage(srv) as used:
                run = lifecycles(srv.url, c, s, script)
            sizes = batches(srv.dbname) or [0]
            self.cycles[batching] = run
            print(
                f"{'lifecycles, ' + LABEL[batching]:<38} {run.completed / run.seconds:>9,.0f}/s"
                f"  p50 {percentile(run.durations, 50):>6.1f} ms"
                f"  p99 {percentile(run.durations, 99):>6.1f} ms"
                f"  failed {sum(run.failures.values())}",
                file=sys.stderr,
            )
            self.notes.append(
                f"  lifecycles, {LABEL[batching]}: {used.line()};"
                f" {run.requests / run.seconds:,.0f} requests/s;"
                f" {run.requests / len(sizes):.1f} commands and {statistics.fmean(sizes):.1f}"
                f" events per write transaction (max {max(sizes)} events); projections"
                f" {projection_lag(srv.url)} events behind at the end; {log_summary(srv)};"
                f" {scans(srv.dbname)}"
            )
            self.notes.extend(f"    first failures: {e}" for e in run.errors)

    def bare_and_pgbench(self) -> None:
        c, s = self.connections, self.seconds
        with database() as bare_db:
            env = {**self.env, "BENCH_DATABASE": bare_db}
            bare = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", "0"]
            with server(bare, env, HERE.parent, self.work / "bare.log", bare_db) as srv:
                script = self.work / "bare.lua"
                script.write_text(LUA % {"token": "-", "path": "/orders", "body": "{}"})
                with usage(srv) as used:
                    self.ceilings["bare"] = wrk(srv.url, c, s, script)
                report("POST /orders (bare, one event/request)", self.ceilings["bare"])
                self.notes.append(f"  bare: {used.line()}")
            with usage(None) as used:
                tps = pgbench(bare_db, c, s, self.work)
            self.ceilings["pgbench"] = {"rps": tps}
            print(f"{'pgbench, one INSERT per transaction':<38} {tps:>9,.0f}/s", file=sys.stderr)
            self.notes.append(f"  pgbench: {used.line()} (its backends counted in 'rest')")

    def print(self, modes: tuple[bool, ...]) -> None:
        print_summary(self.orders, self.cycles, modes)
        print_targets(self.orders.get(True), self.cycles.get(True), self.ceilings)
        if self.ceilings:
            print("\nCeilings, same connections and duration")
        if "healthz" in self.ceilings:
            report("GET /healthz (framework ceiling)", self.ceilings["healthz"], sys.stdout)
        if "bare" in self.ceilings:
            report("POST /orders (bare, one event/request)", self.ceilings["bare"], sys.stdout)
        if "pgbench" in self.ceilings:
            tps = self.ceilings["pgbench"]["rps"]
            print(f"{'pgbench, one INSERT per transaction':<38} {tps:>9,.0f}/s")
        print("\nWhere the time went (cores busy on average over each measurement):")
        print("\n".join(self.notes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16, help="clients (default 16)")
    parser.add_argument("--seconds", type=int, default=10, help="per measurement (default 10)")
    parser.add_argument("--only", choices=("all", "orders", "lifecycle", "ceilings"), default="all")
    parser.add_argument("--batching", choices=("both", "on", "off"), default="both")
    parser.add_argument(
        "--keys",
        choices=("creates", "all", "none"),
        default="creates",
        help="lifecycle steps that send an Idempotency-Key (default: place and payment)",
    )
    parser.add_argument(
        "--no-projections",
        action="store_true",
        help="serve with --no-projections (to see what the in-process projections cost)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("pgbench") is None:
        sys.exit("bench.http needs wrk and pgbench (Debian: apt-get install wrk postgresql-client)")
    modes = {"both": (True, False), "on": (True,), "off": (False,)}[args.batching]
    settings = ", ".join(
        f"{k}={os.environ[k]}"
        for k in ("LEDGER_BATCH_MAX_AGGREGATES", "LEDGER_BATCH_WAIT_MS", "LEDGER_DB_POOL_SIZE")
        if k in os.environ
    )
    print(
        f"{args.connections} connections, {args.seconds} s each, PostgreSQL, one uvicorn"
        f" process and database per scenario{' (--no-projections)' if args.no_projections else ''};"
        f" load generator: wrk{'; ' + settings if settings else ''}\n"
    )
    secret = secrets.token_urlsafe(48)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = Run(
            connections=args.connections,
            seconds=args.seconds,
            work=work,
            env={**os.environ, "LEDGER_AUTH_SECRET": secret, "LEDGER_VAR_DIR": str(work / "var")},
            secret=secret,
            projections=not args.no_projections,
            keys=args.keys,
        )
        if args.only in ("all", "orders"):
            for i, batching in enumerate(modes):
                run.place_orders(batching, healthz=i == 0 and args.only == "all")
        if args.only in ("all", "lifecycle"):
            for batching in modes:
                run.run_lifecycles(batching)
        if args.only in ("all", "ceilings"):
            run.bare_and_pgbench()
    run.print(modes)


def report(label: str, figures: dict[str, float], out: TextIO = sys.stderr) -> None:
    """One line of figures (to stderr while running, to stdout in the summary)."""
    sockets = figures["socket_errors"]
    print(
        f"{label:<38} {figures['rps']:>9,.0f}/s  p50 {figures['p50']:>6.1f} ms"
        f"  p99 {figures['p99']:>6.1f} ms  non-2xx {figures['errors']:.0f}"
        + (f"  socket errors {sockets:.0f}" if sockets else ""),
        file=out,
    )


def print_summary(
    orders: dict[bool, dict[str, float]], cycles: dict[bool, Lifecycles], modes: tuple[bool, ...]
) -> None:
    columns = "".join(f"{LABEL[m]:>22}" for m in modes)

    def row(name: str, values: list[str]) -> None:
        print(f"  {name:<36}" + "".join(f"{v:>22}" for v in values))

    if orders:
        print(f"{'POST /v1/orders':<38}{columns}")
        row("orders/s (target >= 1,500)", [f"{orders[m]['rps']:,.0f}" for m in modes])
        row("p50 ms", [f"{orders[m]['p50']:.1f}" for m in modes])
        row("p99 ms (target <= 35)", [f"{orders[m]['p99']:.1f}" for m in modes])
        row(
            "non-2xx (socket errors)",
            [f"{orders[m]['errors']:.0f} ({orders[m]['socket_errors']:.0f})" for m in modes],
        )
        row("orders per write transaction", [_batch(orders[m]) for m in modes])
        row("write transactions/s", [f"{orders[m]['txn_rate']:,.0f}" for m in modes])
        row(
            "target met", [_met(orders[m]["rps"] >= 1500 and orders[m]["p99"] <= 35) for m in modes]
        )
    if cycles:
        print(f"{'full lifecycles (5 requests each)':<38}{columns}")
        row(
            "lifecycles/s (target >= 500)",
            [f"{cycles[m].completed / cycles[m].seconds:,.0f}" for m in modes],
        )
        row("p50 ms", [f"{percentile(cycles[m].durations, 50):.1f}" for m in modes])
        row("p99 ms", [f"{percentile(cycles[m].durations, 99):.1f}" for m in modes])
        row("failed lifecycles", [_failed(cycles[m]) for m in modes])
        for step in STEPS:
            row(f"  step {step} p50 / p99 ms", [_p50_p99(cycles[m].steps[step]) for m in modes])
        row("target met", [_met(cycles[m].completed / cycles[m].seconds >= 500) for m in modes])


def print_targets(
    orders: dict[str, float] | None,
    cycles: Lifecycles | None,
    ceilings: dict[str, dict[str, float]],
) -> None:
    """Issue 23's table: ratios of figures measured in this one run (group commit on), each
    with what it divides, so they hold on any machine."""
    if orders is None:
        return
    print("\nTargets (issue 23), group commit on, figures of this run")
    rows: list[tuple[str, str, str, bool | None]] = []
    rps = orders["rps"]
    if "bare" in ceilings:
        bare = ceilings["bare"]["rps"]
        rows.append(("orders/s ÷ bare app orders/s", f"{rps:,.0f} / {bare:,.0f}",
                     f"{rps / bare:.2f} (>= 1.0, aim 2.0)", rps / bare >= 1.0))  # fmt: skip
    if "healthz" in ceilings:
        health = ceilings["healthz"]["rps"]
        rows.append(("orders/s ÷ /healthz requests/s", f"{rps:,.0f} / {health:,.0f}",
                     f"{rps / health:.2f} (>= 0.25)", rps / health >= 0.25))  # fmt: skip
    cpu_ms = orders["server_cores"] * 1_000 / rps if rps else 0.0
    cores = f"{orders['server_cores']:.2f} core / {rps:,.0f}/s"
    rows.append(("server CPU ms per placed order", cores, f"{cpu_ms:.2f} (<= 1.5)",
                 cpu_ms <= 1.5))  # fmt: skip
    rows.append(("p99 ms at these clients", "", f"{orders['p99']:.1f} (<= 50)",
                 orders["p99"] <= 50))  # fmt: skip
    if cycles is not None:
        per_s = cycles.completed / cycles.seconds
        rows.append(("lifecycles/s ÷ orders/s", f"{per_s:,.0f} / {rps:,.0f}",
                     f"{per_s / rps:.2f} (>= 0.2)", per_s / rps >= 0.2))  # fmt: skip
    rows.append((f"RSS of ledger serve after {orders['placed']:,.0f} orders", "",
                 f"{orders['rss_mb']:.0f} MB (<= 200 after 100k)", None))  # fmt: skip
    for name, divided, value, met in rows:
        verdict = "" if met is None else _met(met)
        print(f"  {name:<44}{divided:>26}  {value:<28}{verdict}")


def _batch(figures: dict[str, float]) -> str:
    mean, p50, most = figures["batch_mean"], figures["batch_p50"], figures["batch_max"]
    return f"{mean:.1f} (p50 {p50:.0f}, max {most:.0f})"


def _p50_p99(values: list[float]) -> str:
    return f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f}"


def _failed(run: Lifecycles) -> str:
    where = "".join(f" {step}:{n}" for step, n in run.failures.items() if n)
    return f"{sum(run.failures.values())}{where}"


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


if __name__ == "__main__":
    main()
