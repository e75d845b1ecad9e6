"""The dispatcher: sends the deliveries the ``webhooks`` projection decided, at least once.

It runs in ``ledger worker`` and in ``ledger serve`` when that runs the projections, in a
thread of its own, woken when the projection moves and every ``POLL`` seconds besides.

**Claiming.** A delivery is due when it is pending and its next attempt has come, its
endpoint is enabled, and no earlier delivery of the same order to the same endpoint is still
waiting: the events of one order reach an endpoint in order, each after the previous one was
answered 2xx (or given up). On PostgreSQL the due delivery is locked ``FOR UPDATE SKIP
LOCKED`` in a transaction that stays open while it is sent and its outcome written, so
several workers never make the same attempt, and a worker killed mid-send leaves the row as
it was for the next one at once. On SQLite (one machine, one dispatcher in practice) the
delivery is leased for ``LEASE`` instead, and a lease left by a killed process runs out.

**Sending.** The body is rendered at each attempt from the order or payment *at the version
of the event* (the same bytes every time), signed (``signing``), and posted with a
``TIMEOUT``; in production to the address checked just then (``addresses``). Redirects are
not followed.

**Retrying.** Any answer but 2xx (whose body is never read), a timeout, a network error,
or a delivery that cannot be attempted at all (it is logged) is retried after an
exponential backoff with jitter (``BASE`` doubling to ``CAP``, each wait drawn between half
and all of it), and never sooner than a ``Retry-After`` asks (429, 503). A delivery still
failing ``GIVE_UP`` after its first attempt is given up, and its endpoint disabled with the
reason, which admins read on the endpoint; an admin's retry sends it again.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final
from uuid import UUID

import httpx

from api.delivery import addresses
from api.delivery.signing import HEADER, secret_for, signature
from api.http import schemas
from ledger.clock import Clock, iso
from ledger.domain.endpoint import API_VERSION
from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.db import Database, Row, Txn
from projections.orders.projection import order_row
from projections.orders.queries import order_view
from projections.payments.projection import payment_row
from projections.payments.queries import payment_view
from projections.webhooks.projection import DELIVERED, FAILED, PENDING

log = logging.getLogger("api.delivery")

TIMEOUT: Final = 10.0
BASE: Final = timedelta(seconds=30)
CAP: Final = timedelta(hours=6)
GIVE_UP: Final = timedelta(days=3)
LEASE: Final = timedelta(seconds=60)
"""SQLite only: how long a claimed delivery is the claimant's (more than ``TIMEOUT``)."""
HOLD_MS: Final = int((TIMEOUT * 3 + 30) * 1000)
"""PostgreSQL: how long the claiming transaction may sit idle while the delivery is sent:
``TIMEOUT`` is per phase (connect, write, each read), so a send may take a few of them, plus
time to render the body and resolve the host."""
POLL: Final = 1.0
ROUND: Final = 50
"""Attempts between two looks at whether the dispatcher is stopping."""
USER_AGENT: Final = "GigLedger-Webhooks/1"
MAX_ERROR = 500
MAX_RETRY_AFTER: Final = timedelta(days=1)

DUE = """
SELECT d.*, e.url, e.generation, e.previous_until FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
WHERE e.enabled AND NOT e.deleted
  AND ((d.status = 'pending' AND d.next_attempt_at <= :now)
       OR (d.status = 'sending' AND d.lease_until < :now))
  AND NOT EXISTS (
    SELECT 1 FROM webhook_deliveries p
    WHERE p.endpoint_id = d.endpoint_id AND p.order_key = d.order_key
      AND p.position < d.position AND p.status IN ('pending', 'sending'))
ORDER BY d.position LIMIT 1
"""
LEASE_IT = """
UPDATE webhook_deliveries SET status = 'sending', lease_until = :until
WHERE id = :id AND (status = 'pending' OR (status = 'sending' AND lease_until < :now))
"""
HELD = """
SELECT id FROM webhook_deliveries WHERE id = :id AND status = 'sending' AND lease_until = :until
"""
RECORD = """
UPDATE webhook_deliveries SET status = :status, attempts = :attempts,
    next_attempt_at = :next_attempt_at, lease_until = NULL,
    first_attempt_at = COALESCE(first_attempt_at, :started_at), last_attempt_at = :started_at,
    last_status_code = :status_code, last_error = :error, delivered_at = :delivered_at
WHERE id = :id
"""
ATTEMPT = """
INSERT INTO webhook_attempts (delivery_id, number, started_at, duration_ms, status_code,
    error, outcome)
VALUES (:id, :number, :started_at, :duration_ms, :status_code, :error, :outcome)
ON CONFLICT (delivery_id, number) DO NOTHING
"""


@dataclass(frozen=True)
class Answer:
    """How one attempt went."""

    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int, draw: float) -> timedelta:
    """The wait after the ``attempts``-th failed attempt, ``draw`` in [0, 1) choosing
    within the jitter: between half and all of ``BASE * 2**(attempts-1)``, at most ``CAP``."""
    full: timedelta = min(CAP, BASE * 2 ** min(attempts - 1, 32))
    return full * (0.5 + draw / 2)


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date), at most ``MAX_RETRY_AFTER``."""
    if not value:
        return None
    try:
        wait = timedelta(seconds=min(int(value.strip()), int(MAX_RETRY_AFTER.total_seconds())))
    except ValueError:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return max(timedelta(0), min(wait, MAX_RETRY_AFTER))


class Dispatcher:
    """Sends due deliveries for ``ledger`` from ``db``, at ``clock``'s time; ``draw`` is the
    jitter's randomness (injected by tests)."""

    def __init__(
        self,
        ledger: LedgerApp,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        draw: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.ledger, self.db, self.clock, self.draw = ledger, db, clock, draw
        self.production = settings.environment == "production"
        self._key = settings.endpoint_key
        self._client = httpx.Client(
            timeout=TIMEOUT, follow_redirects=False, trust_env=False, transport=transport
        )
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ledger-webhooks", daemon=True)
        self._thread.start()

    def wake(self, *_: object) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread once the attempt in hand is recorded (``run_once`` still sends)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT + 5)

    def close(self) -> None:
        self.stop()
        self._client.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                while self.run_once(ROUND) == ROUND and not self._stopping.is_set():
                    pass
            except Exception:  # a lost database must not end the dispatcher
                log.exception("the webhook dispatcher failed; retrying")
            self._wake.wait(POLL)

    def run_once(self, limit: int = 1_000) -> int:
        """Send what is due now, up to ``limit`` attempts; returns how many were made."""
        made = 0
        while made < limit:
            with self._claimed() as claim:
                if claim is None:
                    break
                row, record = claim
                gave_up = self._attempt(row, record)
            if gave_up is not None:  # outside the claim's transaction: a command of its own
                self._disable(row, gave_up)
            made += 1
        return made

    @contextmanager
    def _claimed(self) -> Iterator[tuple[Row, Callable[[Callable[[Txn], None]], None]] | None]:
        """The next due delivery, and how to write its outcome: on PostgreSQL in the
        transaction holding its lock, on SQLite in a transaction of its own after a lease."""
        now = iso(self.clock())
        if self.db.postgres:
            with self.db.transaction() as txn:
                # The pool's sessions end after 5 s idle in a transaction, and this one waits
                # for the receiver up to TIMEOUT: losing the lock would let another send.
                txn.execute(f"SET LOCAL idle_in_transaction_session_timeout = {HOLD_MS}")
                row = txn.one(DUE + " FOR UPDATE OF d SKIP LOCKED", {"now": now})
                yield None if row is None else (row, lambda write: write(txn))
            return
        with self.db.transaction() as txn:
            row = txn.one(DUE, {"now": now})
            until = iso(self.clock() + LEASE)
            leased = row is not None and txn.execute(LEASE_IT, {
                "until": until, "now": now, "id": row["id"],
            })  # fmt: skip
        if row is None or not leased:  # none due, or another thread leased it first
            yield None
            return

        def record(write: Callable[[Txn], None]) -> None:
            with self.db.transaction() as txn:  # only while the lease is still this one's
                if txn.one(HELD, {"id": row["id"], "until": until}) is not None:
                    write(txn)

        yield row, record

    # -- one attempt ------------------------------------------------------------------------

    def _attempt(self, row: Row, record: Callable[[Callable[[Txn], None]], None]) -> Answer | None:
        """Send once and record how it went; the answer, when the delivery was given up."""
        started = self.clock()
        try:
            answer = self._send(row, started)
        except Exception as error:  # a row that cannot be sent must not hold up the queue
            log.exception("webhook delivery %s could not be attempted", row["id"])
            answer = Answer(None, f"{type(error).__name__}: {error}"[:MAX_ERROR], 0)
        number = int(row["attempts"]) + 1
        first = (
            datetime.fromisoformat(str(row["first_attempt_at"]).replace("Z", "+00:00"))
            if row["first_attempt_at"]
            else started
        )
        if answer.delivered:
            status, outcome, next_at = DELIVERED, "delivered", None
        else:
            wait = backoff(number, self.draw())
            if answer.retry_after is not None:
                wait = max(wait, answer.retry_after)
            if started + wait - first > GIVE_UP:
                status, outcome, next_at = FAILED, "gave_up", None
            else:
                status, outcome, next_at = PENDING, "failed", started + wait
        values = {
            "id": row["id"],
            "status": status,
            "attempts": number,
            "next_attempt_at": iso(next_at),
            "started_at": iso(started),
            "status_code": answer.status_code,
            "error": answer.error,
            "delivered_at": iso(started) if answer.delivered else None,
            "number": number,
            "duration_ms": answer.duration_ms,
            "outcome": outcome,
        }

        def write(txn: Txn) -> None:
            txn.execute(RECORD, values)
            txn.execute(ATTEMPT, values)

        record(write)
        return answer if outcome == "gave_up" else None

    def _disable(self, row: Row, answer: Answer) -> None:
        why = answer.error or f"answered {answer.status_code}"
        reason = f"deliveries failed for {GIVE_UP.days} days (the last: {why})"
        try:
            self.ledger.disable_failing_endpoint(UUID(row["endpoint_id"]), reason)
        except Exception:  # the delivery is recorded as given up; the next one tries again
            log.exception("could not disable webhook endpoint %s", row["endpoint_id"])

    def body(self, row: Row) -> bytes:
        """The event as the endpoint receives it: the order or payment as the API shows it
        right after the event, in the versioned envelope."""
        aggregate: Any = self.ledger.repository.get(
            UUID(row["stream_id"]), version=int(row["stream_version"])
        )
        if row["kind"] == "payment":
            assert isinstance(aggregate, Payment)
            shown: Any = schemas.Payment.model_validate(payment_view(payment_row(aggregate)))
        else:
            assert isinstance(aggregate, Order)
            shown = schemas.Order.model_validate(order_view(order_row(aggregate)))
        envelope = {
            "id": row["event_id"],
            "type": row["type"],
            "createdAt": row["created_at"],
            "position": int(row["position"]),
            "apiVersion": API_VERSION,
            "data": {"object": shown.model_dump(mode="json", by_alias=True)},
        }
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()

    def secrets(self, row: Row, now: datetime) -> list[str]:
        """The secrets signing a delivery at ``now``: the current one, and the one before
        during a rotation's overlap."""
        assert self._key is not None
        generations = [int(row["generation"])]
        until = row["previous_until"]
        if until and iso(now) < until and generations[0] > 1:
            generations.append(generations[0] - 1)
        endpoint = UUID(row["endpoint_id"])
        return [secret_for(self._key, endpoint, g) for g in generations]

    def _send(self, row: Row, now: datetime) -> Answer:
        began = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - began) * 1000)

        if self._key is None:
            return Answer(None, "LEDGER_WEBHOOK_KEY is not set: nothing can be signed", 0)
        try:
            body = self.body(row)
            target = addresses.target(row["url"], production=self.production)
        except addresses.UnsafeAddress as refused:
            return Answer(None, f"refused: {refused}", took())
        stamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            HEADER: signature(self.secrets(row, now), body, stamp),
            "Ledger-Event-Id": row["event_id"],
            "Ledger-Event-Type": row["type"],
            "Ledger-Delivery-Id": row["id"],
        }
        extensions = {}
        if target.pinned:
            headers["Host"] = target.host
            extensions["sni_hostname"] = target.host
        try:
            # Only the status and headers are read: a receiver's body is never downloaded.
            with self._client.stream(
                "POST", target.url, content=body, headers=headers, extensions=extensions
            ) as response:
                code, wait_header = response.status_code, response.headers.get("Retry-After")
        except httpx.TimeoutException:
            return Answer(None, f"no answer within {TIMEOUT:g} s", took())
        except httpx.HTTPError as failure:
            return Answer(None, f"{type(failure).__name__}: {failure}"[:MAX_ERROR], took())
        wait = retry_after(wait_header, now)
        return Answer(code, None if 200 <= code < 300 else f"answered {code}", took(), wait)
