"""Webhooks sent by real ``ledger worker`` processes on PostgreSQL, to a receiver on loopback.

A worker SIGKILLed in the middle of a burst, while one delivery is in flight (sent, not yet
answered), and started again: every event arrives, the one cut off is sent again at once
(its row was left as it was, not backed off), every body is signed with the endpoint's
secret, and each order's events arrive in the order of the log. Two workers at once on one
database: every delivery is sent once and attempted once, while one worker's delivery is in
flight the other sends the rest, and an answer slower than PostgreSQL's
idle-in-transaction timeout is not sent a second time by the other worker meanwhile.

The events are made by a ``LedgerApp`` in this process, which runs neither the projections
nor the dispatcher: only the workers decide and send deliveries. Nothing sleeps to wait for
state: readiness is read from the worker's own log line, and every wait is on a condition
with a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from api.delivery.dispatcher import BASE, TIMEOUT
from api.delivery.signing import HEADER, SignatureError, secret_for, verify
from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.endpoint import EVENT_TYPES
from ledger.domain.payment import payment_id_for
from ledger.domain.values import Package
from ledger.service import LedgerApp
from ledger.settings import load_settings
from tests.webhook_receiver import Received, Receiver, receiving

pytestmark = pytest.mark.postgres

KEY = "e2e-webhook-key-" + "0123456789abcdef" * 3
ADMIN = Caller("adm", frozenset({"admin"}))
GATEWAY = Caller.system("gateway")
PRICE = 10_000
ORDERS = 40
"""Each order has three public events (placed, paid, payment succeeded): 120 deliveries."""
HELD = 25
"""The request the receiver holds unanswered while the first worker is killed."""
RETRIED_AT_ONCE = BASE.total_seconds() / 2
"""A failed attempt waits at least half of ``BASE`` before the next: everything arriving
within that after the restart shows the delivery cut off was not counted as failed."""
READY = "worker running:"


class Worker:
    """``ledger worker`` in a subprocess, ready once it says so on its log."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log: list[str] = []
        ready: list[str] = []
        settled = threading.Event()  # ready, or the output ended (the process died first)

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.log.append(line)
                if READY in line and not ready:
                    ready.append(line)
                    settled.set()
            settled.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        settled.wait(30)
        if not ready:
            self.stop()
            raise RuntimeError("ledger worker did not start:\n" + "".join(self.log))

    def kill(self) -> None:
        """SIGKILL: no shutdown; the request in flight and its transaction are cut off."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)  # the output ends with the process
        if self.process.stdout is not None:
            self.process.stdout.close()

    def output(self) -> str:
        return "".join(self.log)


class HoldOne(deque[tuple[int, str | None]]):
    """The receiver's answers: 200 to every request, but the ``nth`` is held, unanswered and
    not yet recorded, until ``release``: the worker that sent it is stuck mid-send, its
    delivery claimed in an open transaction.

    The receiver asks for an answer under its condition's lock; the held request waits on
    that condition (which lets the lock go), so the receiver takes other requests
    meanwhile, and ``wait_until`` works as ever. ``answer_within`` makes it a slow receiver
    instead: the held request is answered after that many seconds if not released first."""

    def __init__(self, receiver: Receiver, nth: int, answer_within: float = 60) -> None:
        super().__init__([(200, None)])  # never empty: every request asks ``popleft``
        self.nth, self.seen, self.answer_within = nth, 0, answer_within
        self.holding = threading.Event()
        self.answered = False
        """Whether the held request was let go: read in ``wait_until``, it is recorded then."""
        self._condition = receiver._changed  # the receiver's own, to wait on without its lock
        self._released = False

    def popleft(self) -> tuple[int, str | None]:
        self.seen += 1
        if self.seen == self.nth:
            self.holding.set()
            self._condition.wait_for(lambda: self._released, self.answer_within)
            self.answered = True  # under the receiver's lock, which records it before letting go
        return (200, None)

    def release(self) -> None:
        with self._condition:
            self._released = True
            self._condition.notify_all()


@pytest.fixture
def env(postgres_url: str, tmp_path: Path) -> dict[str, str]:
    """The workers' environment: none of ours, the test database and the webhook key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "YOUCANPAY_"))}
    return {
        **clean,
        "LEDGER_DATABASE_URL": postgres_url,
        "LEDGER_VAR_DIR": str(tmp_path / "var"),
        "LEDGER_WEBHOOK_KEY": KEY,
    }


@pytest.fixture
def ledger(env: dict[str, str]) -> Iterator[LedgerApp]:
    """The write side, in this process, on the workers' database (no projections, no
    dispatcher)."""
    settings = load_settings(
        LEDGER_DATABASE_URL=env["LEDGER_DATABASE_URL"],
        LEDGER_VAR_DIR=env["LEDGER_VAR_DIR"],
        LEDGER_WEBHOOK_KEY=KEY,
        _env_file=None,
    )
    app = build_ledger(settings)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], Worker]]:
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(env, tmp_path)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as served:
        yield served


def register(ledger: LedgerApp, receiver: Receiver) -> UUID:
    endpoint = ledger.register_endpoint(ADMIN, receiver.url, ["*"], "the marketplace")
    return UUID(str(endpoint.aggregate.id))


def open_gig(ledger: LedgerApp) -> UUID:
    done = ledger.create_gig(Caller("f-1"), "Logo", [Package("basic", PRICE, 3, 1, "A logo")])
    return UUID(str(done.aggregate.id))


def paid_orders(ledger: LedgerApp, gig: UUID, numbers: range) -> list[str]:
    """Orders placed and paid by card (``order.placed``, then ``payment.succeeded`` and
    ``order.paid`` in one save); their ids."""
    ids = []
    for n in numbers:
        client = Caller(f"c-{n}")
        order = ledger.place_order(client, gig, "basic").aggregate.id
        ledger.create_payment(client, order, "credit_card")
        ledger.confirm_payment(GATEWAY, payment_id_for(order), f"tx-{n}", PRICE, "MAD")
        ids.append(str(order))
    return ids


def public_events(ledger: LedgerApp) -> set[str]:
    """The ids of every event of the log a ``*`` endpoint is sent (``evt_<position>``)."""
    notifications = ledger.recorder.select_notifications(start=1, limit=100_000)
    return {
        f"evt_{item.id}" for item in notifications if item.topic.rsplit(".", 1)[-1] in EVENT_TYPES
    }


def ids_in(received: list[Received]) -> set[str]:
    return {str(item.event["id"]) for item in received}


def order_of(event: dict[str, Any]) -> str:
    shown = event["data"]["object"]
    return str(shown.get("orderId", shown["id"]))


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def claims_open(url: str) -> int:
    """Dispatcher transactions open now on a delivery they locked: waiting (for the
    receiver's answer) with the due query, ``FOR UPDATE … SKIP LOCKED``, as their last."""
    [(count,)] = rows(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'idle in transaction' AND query LIKE '%SKIP LOCKED%'",
    )
    return int(count)


def test_a_worker_killed_mid_burst_loses_nothing(
    ledger: LedgerApp,
    receiver: Receiver,
    workers: Callable[[], Worker],
    env: dict[str, str],
) -> None:
    endpoint = register(ledger, receiver)
    gig = open_gig(ledger)
    hold = HoldOne(receiver, HELD)
    receiver.answers = hold
    try:
        first = workers()
        orders = paid_orders(ledger, gig, range(ORDERS // 2))
        assert hold.holding.wait(30), "the worker never sent the held delivery:\n" + (
            first.output()
        )
        assert claims_open(env["LEDGER_DATABASE_URL"]) == 1, "the held delivery is claimed"
        first.kill()  # the held delivery is in flight: sent, its answer not yet read
        orders += paid_orders(ledger, gig, range(ORDERS // 2, ORDERS))  # while none runs
    finally:
        hold.release()  # the receiver records the held request (its answer goes nowhere)
    expected = public_events(ledger)
    assert len(expected) == 3 * ORDERS
    assert receiver.wait_until(lambda got: len(got) >= HELD, 10)
    before = ids_in(receiver.received)
    assert len(before) == HELD and before < expected, "the kill landed mid-burst"
    cut_off = str(receiver.received[HELD - 1].event["id"])

    second = workers()
    arrived = receiver.wait_until(lambda got: ids_in(got) >= expected, RETRIED_AT_ONCE)
    missing = sorted(expected - ids_in(receiver.received))
    assert arrived, f"{len(missing)} events not delivered: {missing[:5]}…\n{second.output()}"

    received = list(receiver.received)
    assert ids_in(received) == expected, "every event, and only the log's, at least once"
    assert [str(item.event["id"]) for item in received].count(cut_off) >= 2, (
        "the delivery in flight when the worker died was sent again"
    )
    secret = secret_for(KEY, endpoint, 1)
    for item in received:
        try:
            verify(item.body, item.headers[HEADER], secret)
        except SignatureError as error:
            pytest.fail(f"{item.event['id']}: {error}")
        assert item.headers["Ledger-Event-Id"] == item.event["id"]
    per_order: dict[str, list[int]] = {}
    for item in received:
        per_order.setdefault(order_of(item.event), []).append(int(item.event["position"]))
    assert set(per_order) == set(orders)
    for order, positions in per_order.items():
        assert positions == sorted(positions), f"order {order}'s events out of order"

    second.stop()  # a clean stop records the attempt in hand: the tables are final
    url = env["LEDGER_DATABASE_URL"]
    deliveries = rows(url, "SELECT event_id, status FROM webhook_deliveries")
    assert {event for event, _ in deliveries} == expected
    assert {status for _, status in deliveries} == {"delivered"}
    failed = rows(
        url, "SELECT delivery_id, error FROM webhook_attempts WHERE outcome <> 'delivered'"
    )
    assert failed == [], "the attempt cut off by the kill is not recorded as failed"


def test_two_workers_never_make_the_same_attempt(
    ledger: LedgerApp,
    receiver: Receiver,
    workers: Callable[[], Worker],
    env: dict[str, str],
) -> None:
    register(ledger, receiver)
    gig = open_gig(ledger)
    url = env["LEDGER_DATABASE_URL"]
    hold = HoldOne(receiver, 1)
    receiver.answers = hold
    try:
        both = [workers(), workers()]
        paid_orders(ledger, gig, range(ORDERS))
        assert hold.holding.wait(30), "no delivery was sent"
        assert claims_open(url) >= 1, "the held delivery is claimed"
        # The worker that sent it is stuck until the answer: what arrives now, the other sent.
        others = receiver.wait_until(lambda got: len(got) >= 1, 20)
        assert others, "the other worker sent nothing while one delivery was held"
    finally:
        hold.release()
    expected = public_events(ledger)
    assert len(expected) == 3 * ORDERS

    arrived = receiver.wait_until(lambda got: hold.answered and ids_in(got) >= expected, 30)
    logs = "\n".join(worker.output() for worker in both)
    assert arrived, f"{len(expected - ids_in(receiver.received))} events not delivered\n{logs}"
    assert all(worker.process.poll() is None for worker in both), logs

    for worker in both:
        worker.stop()  # a clean stop records the attempt in hand: the tables are final
    deliveries = {str(id_) for (id_,) in rows(url, "SELECT id FROM webhook_deliveries")}
    assert len(deliveries) == len(expected)
    sent = [item.headers["Ledger-Delivery-Id"] for item in receiver.received]
    doubled = sorted({delivery for delivery in sent if sent.count(delivery) > 1})
    assert doubled == [], f"deliveries sent more than once: {doubled}"
    assert set(sent) == deliveries
    attempts = rows(url, "SELECT delivery_id, number, outcome FROM webhook_attempts")
    assert sorted(str(a[0]) for a in attempts) == sorted(deliveries), "one attempt each"
    assert {(a[1], a[2]) for a in attempts} == {(1, "delivered")}


def test_a_slow_answer_is_not_sent_again_by_the_other_worker(
    ledger: LedgerApp,
    receiver: Receiver,
    workers: Callable[[], Worker],
    env: dict[str, str],
) -> None:
    """An answer that takes longer than PostgreSQL's idle-in-transaction timeout (5 s, the
    ``eventsourcing`` pool's default) but less than the dispatcher's ``TIMEOUT``: the claim
    must hold for the whole send, or the other worker sends the same delivery meanwhile."""
    register(ledger, receiver)
    gig = open_gig(ledger)
    slow = TIMEOUT - 2  # seconds: a slow answer, still in time
    hold = HoldOne(receiver, 1, answer_within=slow)
    receiver.answers = hold
    both = [workers(), workers()]
    paid_orders(ledger, gig, range(1))  # one order: its three events wait for the first
    expected = public_events(ledger)
    assert len(expected) == 3

    done = receiver.wait_until(lambda got: hold.answered and ids_in(got) >= expected, slow + 20)
    logs = "\n".join(worker.output() for worker in both)
    assert done, f"{sorted(expected - ids_in(receiver.received))} not delivered\n{logs}"
    sent = [item.headers["Ledger-Delivery-Id"] for item in receiver.received]
    doubled = sorted({delivery for delivery in sent if sent.count(delivery) > 1})
    assert doubled == [], (
        f"deliveries sent twice: {doubled}; the first worker's claim was lost while it waited"
        f" for the answer (its session ended by idle_in_transaction_session_timeout)\n{logs}"
    )
    for worker in both:
        worker.stop()  # a clean stop records the attempt in hand: the tables are final
    attempts = rows(env["LEDGER_DATABASE_URL"], "SELECT number, outcome FROM webhook_attempts")
    assert sorted(attempts) == [(1, "delivered")] * 3, "the slow attempt is recorded"
