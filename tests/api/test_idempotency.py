"""``Idempotency-Key`` on POST (docs/api.md, "Common headers"), on SQLite and PostgreSQL.

The same key and request within 24 h answers the first status and body again, with
``Idempotent-Replayed: true``, and stores nothing; the same key with another request is 409
``idempotency_conflict``; keys are scoped to the caller. "Stores nothing" is checked on the
event store's head, the position of its last event.

The tables run on SQLite only (``on_sqlite``); the core cases — a replay, the expiry, a
retry whose answer was lost, and concurrent retries — run on both backends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from eventsourcing.persistence import IntegrityError

from api.http.auth import signing_key
from api.http.idempotency.keys import IdempotencyStore, request_hash
from ledger.receipts import Outcome
from ledger.settings import Settings
from ledger.store import Receipts
from projections.db import Txn
from tests.api.conftest import BASIC, Api
from tests.conftest import FakeClock

on_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
KEY = "order-7f3a"
KEPT = ("etag", "location", "x-ledger-position", "content-type")
"""The headers a replay must repeat (with the status and the body, byte for byte)."""


def post(api: Api, path: str, body: Any, who: str, key: str = KEY) -> httpx.Response:
    """POST as ``who`` with ``key`` as the ``Idempotency-Key``."""
    headers = {**api.as_(who), "Idempotency-Key": key}
    return api.client.post(path, json=body, headers=headers)


def send(api: Api, request: Request, key: str = KEY) -> httpx.Response:
    return post(api, request.path, request.body, request.who, key)


def head(api: Api) -> int:
    """The position of the last stored event."""
    return int(api.app.state.ledger.recorder.max_notification_id() or 0)


def kept_keys(api: Api) -> int:
    with api.app.state.idempotency.db.transaction() as txn:
        return int(txn.one("SELECT COUNT(*) AS n FROM idempotency_keys")["n"])


def forget_every_key(api: Api) -> None:
    """What a crash between storing the events and storing the answer leaves behind."""
    with api.app.state.idempotency.db.transaction() as txn:
        txn.execute("DELETE FROM idempotency_keys")


def items(api: Api, path: str, who: str) -> list[dict[str, Any]]:
    headers = {**api.as_(who), "X-Ledger-Min-Position": str(head(api))}
    response = api.client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    assert not response.json()["hasMore"]
    return list(response.json()["data"])


def assert_replay_of(again: httpx.Response, first: httpx.Response) -> None:
    assert "idempotent-replayed" not in first.headers
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.status_code == first.status_code
    assert again.content == first.content
    for name in KEPT:
        assert again.headers.get(name) == first.headers.get(name), name


# -- requests to replay: each builds what it needs and names the request ------------------------


@dataclass(frozen=True)
class Request:
    path: str
    body: Any
    who: str


def create_gig(api: Api) -> Request:
    return Request("/v1/gigs", {"title": "Logo", "packages": [BASIC]}, "freelancer-1")


def place_order(api: Api) -> Request:
    return Request("/v1/orders", {"gigId": api.gig()["id"], "packageId": "basic"}, "client-1")


def create_payment(api: Api) -> Request:
    order = api.order(api.gig())
    return Request(
        f"/v1/orders/{order['id']}/payments", {"paymentMethod": "credit_card"}, "client-1"
    )


def accept(api: Api) -> Request:
    order = api.paid_order(api.gig())
    return Request(f"/v1/orders/{order['id']}/accept", None, "freelancer-1")


def cancel(api: Api) -> Request:
    order = api.order(api.gig())
    return Request(f"/v1/orders/{order['id']}/cancel", {"reason": "client_withdrew"}, "client-1")


REQUESTS: dict[str, Callable[[Api], Request]] = {
    "create_gig": create_gig,
    "place_order": place_order,
    "create_payment": create_payment,
    "accept": accept,
    "cancel": cancel,
}


@on_sqlite
@pytest.mark.parametrize("make", REQUESTS.values(), ids=REQUESTS.keys())
def test_a_replay_answers_the_first_answer_and_stores_nothing(
    api: Api, make: Callable[[Api], Request]
) -> None:
    request = make(api)
    first = send(api, request)
    assert first.status_code in (200, 201), first.text
    stored = head(api)
    again = send(api, request)
    assert_replay_of(again, first)
    assert head(api) == stored
    assert send(api, request).content == first.content


def test_a_replayed_order_is_the_same_single_order(api: Api) -> None:
    request = place_order(api)
    first = send(api, request)
    assert first.status_code == 201, first.text
    stored = head(api)
    again = send(api, request)
    assert_replay_of(again, first)
    assert head(api) == stored
    assert first.headers["Location"] == f"/v1/orders/{first.json()['id']}"
    assert [o["id"] for o in items(api, "/v1/orders", "client-1")] == [first.json()["id"]]


# -- the same key for another request ----------------------------------------------------------

OTHER_REQUESTS: dict[str, Callable[[Request], Request]] = {
    "other_body": lambda r: Request(r.path, {**r.body, "requirements": "Blue"}, r.who),
    "other_path": lambda r: Request("/v1/gigs", {"title": "T", "packages": [BASIC]}, r.who),
    "other_query": lambda r: Request(f"{r.path}?source=retry", r.body, r.who),
    "no_body": lambda r: Request(r.path, None, r.who),
}


@on_sqlite
@pytest.mark.parametrize("change", OTHER_REQUESTS.values(), ids=OTHER_REQUESTS.keys())
def test_the_same_key_for_another_request_is_a_conflict(
    api: Api, change: Callable[[Request], Request]
) -> None:
    request = place_order(api)
    first = send(api, request)
    assert first.status_code == 201, first.text
    stored = head(api)
    other = change(request)
    response = send(api, other)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "idempotency_conflict"
    assert response.json()["detail"] == (
        "this Idempotency-Key was used with another request and stays bound to that first"
        " request for 24 h; send a new request with a new key"
    )
    assert response.headers["content-type"].startswith("application/problem+json")
    assert head(api) == stored
    assert_replay_of(send(api, request), first)


@on_sqlite
def test_keys_are_scoped_to_the_caller(api: Api) -> None:
    gig = api.gig()
    body = {"gigId": gig["id"], "packageId": "basic"}
    mine = post(api, "/v1/orders", body, "client-1")
    theirs = post(api, "/v1/orders", body, "client-2")
    assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert (mine.json()["userId"], theirs.json()["userId"]) == ("client-1", "client-2")
    assert_replay_of(post(api, "/v1/orders", body, "client-2"), theirs)
    assert_replay_of(post(api, "/v1/orders", body, "client-1"), mine)


@on_sqlite
def test_another_caller_with_the_key_cannot_read_the_first_answer(api: Api) -> None:
    """A stranger replaying a client's key on the client's order gets their own answer (404),
    never the stored one."""
    request = create_payment(api)
    first = send(api, request)
    assert first.status_code == 201, first.text
    response = post(api, request.path, request.body, "stranger")
    assert response.status_code == 404, response.text
    assert "idempotent-replayed" not in response.headers


# -- refusals are answers too ------------------------------------------------------------------


@on_sqlite
def test_a_409_is_replayed_even_once_the_request_would_succeed(api: Api) -> None:
    order = api.paid_order(api.gig())
    path = f"/v1/orders/{order['id']}/complete"
    first = post(api, path, None, "client-1")
    assert (first.status_code, first.json()["code"]) == (409, "invalid_transition"), first.text
    delivered = post(api, f"/v1/orders/{order['id']}/deliver", {"message": "Done"}, "freelancer-1")
    assert delivered.status_code == 200, delivered.text
    stored = head(api)
    again = post(api, path, None, "client-1")
    assert_replay_of(again, first)
    assert head(api) == stored
    now = api.read(f"/v1/orders/{order['id']}", "client-1", position=stored)
    assert now["stage"] == "delivered"


@on_sqlite
@pytest.mark.parametrize(
    ("who", "status"),
    [
        pytest.param("freelancer-1", 403, id="403_not_theirs"),
        pytest.param("stranger", 404, id="404_not_visible"),
    ],
)
def test_refusals_by_caller_are_replayed(api: Api, who: str, status: int) -> None:
    order = api.paid_order(api.gig())
    path = f"/v1/orders/{order['id']}/complete"
    first = post(api, path, None, who)
    assert first.status_code == status, first.text
    assert_replay_of(post(api, path, None, who), first)


@on_sqlite
def test_a_422_from_the_ledger_is_replayed(api: Api) -> None:
    gig = api.gig()
    body = {"gigId": gig["id"], "packageId": "premium"}  # the gig has only "basic"
    first = post(api, "/v1/orders", body, "client-1")
    assert first.status_code == 422, first.text
    assert_replay_of(post(api, "/v1/orders", body, "client-1"), first)


# -- the key itself ----------------------------------------------------------------------------


@on_sqlite
@pytest.mark.parametrize(
    ("key", "status"),
    [
        pytest.param("k" * 255, 201, id="255_chars"),
        pytest.param("k" * 256, 422, id="256_chars"),
        pytest.param("k" * 1000, 422, id="1000_chars"),
    ],
)
def test_a_key_longer_than_255_characters_is_refused(api: Api, key: str, status: int) -> None:
    request = place_order(api)
    stored = head(api)
    response = send(api, request, key)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["code"] == "validation_failed"
        assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]
        assert head(api) == stored
        assert kept_keys(api) == 0


def unauthenticated(api: Api, settings: Settings) -> dict[str, dict[str, str]]:
    now = datetime.now(UTC)
    expired = api.app.state.auth.issue("client-1", ttl=timedelta(seconds=-1))
    foreign = jwt.encode(
        {"sub": "client-1", "exp": now + timedelta(hours=1)}, "x" * 48, algorithm="HS256"
    )
    gateway = jwt.encode(
        {"sub": "client-1", "roles": ["gateway"], "exp": now + timedelta(hours=1)},
        signing_key(settings),
        algorithm="HS256",
    )
    return {
        "no_token": {},
        "expired": {"Authorization": f"Bearer {expired}"},
        "another_key": {"Authorization": f"Bearer {foreign}"},
        "gateway_role": {"Authorization": f"Bearer {gateway}"},
    }


@on_sqlite
@pytest.mark.parametrize("kind", ["no_token", "expired", "another_key", "gateway_role"])
def test_a_key_without_a_valid_token_is_401_and_nothing_is_kept(
    api: Api, settings: Settings, kind: str
) -> None:
    request = place_order(api)
    stored = head(api)
    headers = {**unauthenticated(api, settings)[kind], "Idempotency-Key": KEY}
    response = api.client.post(request.path, json=request.body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert (head(api), kept_keys(api)) == (stored, 0)
    then = send(api, request)
    assert then.status_code == 201, then.text
    assert "idempotent-replayed" not in then.headers


def test_a_key_expires_after_24_hours(api: Api, clock: FakeClock) -> None:
    request = accept(api)
    first = send(api, request)
    assert first.status_code == 200, first.text
    clock.advance(hours=23)
    assert_replay_of(send(api, request), first)
    clock.advance(hours=2)
    again = send(api, request)
    assert "idempotent-replayed" not in again.headers
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition"), again.text


REUSES: dict[str, Callable[[Api], Request]] = {
    "another_order": lambda api: Request(
        "/v1/orders", {"gigId": api.gig("freelancer-2")["id"], "packageId": "basic"}, "client-1"
    ),
    "a_gig": lambda api: Request("/v1/gigs", {"title": "Mine", "packages": [BASIC]}, "client-1"),
}


@on_sqlite
@pytest.mark.parametrize("make", REUSES.values(), ids=REUSES.keys())
def test_an_expired_key_is_free_for_another_request(
    api: Api, clock: FakeClock, make: Callable[[Api], Request]
) -> None:
    """After 24 h the key is forgotten (docs/api.md): a new request with it runs and creates."""
    request = place_order(api)
    assert send(api, request).status_code == 201
    clock.advance(hours=25)
    reuse = make(api)
    response = send(api, reuse)
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers


@on_sqlite
def test_an_abandoned_claim_is_in_progress_until_it_goes_stale(api: Api, clock: FakeClock) -> None:
    """A claim whose request never finished (its process died) holds the key for a while
    (409 ``idempotency_in_progress`` with ``Retry-After``), then lets a retry run."""
    request = place_order(api)
    raw = json.dumps(request.body).encode()
    digest = request_hash("POST", request.path, "", raw)
    assert api.app.state.idempotency.claim(request.who, KEY, digest).won
    headers = {**api.as_(request.who), "Idempotency-Key": KEY, "Content-Type": "application/json"}
    busy = api.client.post(request.path, content=raw, headers=headers)
    assert busy.status_code == 409, busy.text
    assert busy.json()["code"] == "idempotency_in_progress"
    assert busy.headers["retry-after"]
    clock.advance(minutes=3)
    retry = api.client.post(request.path, content=raw, headers=headers)
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_requests_finding_one_lapsed_claim_do_not_both_take_it(
    api: Api, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B reads the lapsed claim, then A takes it over before B acts on what it read: B
    must not delete A's fresh claim and run too (a payment would open two checkouts).
    (On SQLite the store's write lock serialises the two whole claims.)"""
    store = api.app.state.idempotency
    assert store.claim("caller", KEY, "hash").won  # a claim whose request died
    clock.advance(minutes=3)
    b_read, a_done = threading.Event(), threading.Event()
    one = Txn.one

    def b_waits_after_reading(self: Txn, sql: str, params: Any = None) -> Any:
        row = one(self, sql, params)
        if threading.current_thread().name == "B":
            b_read.set()
            a_done.wait(10)
        return row

    monkeypatch.setattr(Txn, "one", b_waits_after_reading)
    claims: dict[str, Any] = {}

    def claim(name: str) -> None:
        if name == "A":
            b_read.wait(10)
        claims[name] = store.claim("caller", KEY, "hash")
        if name == "A":
            a_done.set()

    threads = [threading.Thread(target=claim, args=(name,), name=name) for name in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert b_read.is_set() and a_done.is_set()
    assert claims["A"].won and claims["A"].recheck
    assert not claims["B"].won


# -- a retry whose first answer was lost --------------------------------------------------------


def test_a_retried_order_whose_answer_was_lost_creates_no_second_order(api: Api) -> None:
    """Even with its key's row gone, the retry runs into the id derived from the key, and
    the receipt written with the first order answers it."""
    request = place_order(api)
    first = send(api, request)
    assert first.status_code == 201, first.text
    forget_every_key(api)
    stored = head(api)
    retry = send(api, request)
    assert_replay_of(retry, first)
    assert head(api) == stored
    assert [o["id"] for o in items(api, "/v1/orders", "client-1")] == [first.json()["id"]]


@on_sqlite
def test_a_retried_gig_whose_answer_was_lost_creates_no_second_gig(api: Api) -> None:
    request = create_gig(api)
    first = send(api, request)
    assert first.status_code == 201, first.text
    forget_every_key(api)
    stored = head(api)
    retry = send(api, request)
    assert_replay_of(retry, first)
    assert head(api) == stored
    gigs = items(api, "/v1/gigs?freelancerId=freelancer-1", "client-1")
    assert [g["id"] for g in gigs] == [first.json()["id"]]


def receipt_of(api: Api, who: str, key: str = KEY) -> Outcome | None:
    recorder = api.app.state.ledger.recorder
    assert isinstance(recorder, Receipts)
    return recorder.receipt_of(who, key)


async def never_kept(*_: object) -> None:
    """``IdempotencyStore.acomplete`` of a process that dies before keeping the answer."""


@pytest.mark.parametrize("make", [place_order, accept], ids=["place_order", "accept"])
def test_a_keyed_command_leaves_its_receipt_in_its_own_transaction(
    api: Api, make: Callable[[Api], Request]
) -> None:
    request = make(api)
    first = send(api, request)
    assert first.status_code in (200, 201), first.text
    receipt = receipt_of(api, request.who)
    assert receipt is not None
    assert (str(receipt.aggregate_id), receipt.version) == (
        first.json()["id"],
        int(first.headers["etag"].strip('"')),
    )
    assert receipt.position == int(first.headers["x-ledger-position"]) == head(api)
    assert receipt_of(api, request.who, "another-key") is None


def test_a_keyed_command_decided_again_after_a_lost_race_still_leaves_its_receipt(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = accept(api)
    writer = api.app.state.ledger.writer
    submit, lost = writer.submit, []  # the route awaits the writer (``LedgerApp.perform``)

    def lose_the_first_race(pending: Any) -> Any:
        if not lost:
            lost.append(pending)
            pending.outcome.set_exception(IntegrityError("another writer took this version"))
            return pending.outcome
        return submit(pending)

    monkeypatch.setattr(writer, "submit", lose_the_first_race)
    first = send(api, request)
    assert first.status_code == 200, first.text
    assert len(lost) == 1
    receipt = receipt_of(api, request.who)
    assert receipt is not None
    assert receipt.position == int(first.headers["x-ledger-position"])


@pytest.mark.parametrize("make", [place_order, accept], ids=["place_order", "accept"])
def test_a_retry_after_a_crash_between_commit_and_answer_gets_the_first_answer(
    api: Api, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, make: Callable[[Api], Request]
) -> None:
    """The process dies after the command committed and before the answer was kept: the
    claim stays unfinished. Once it lapses, the retry is answered from the receipt written
    with the events — the same status, body and headers — and acts no second time."""
    request = make(api)
    store = api.app.state.idempotency
    with monkeypatch.context() as crash:
        crash.setattr(store, "acomplete", never_kept)
        first = send(api, request)
    assert first.status_code in (200, 201), first.text
    stored = head(api)
    running = send(api, request)
    assert (running.status_code, running.json()["code"]) == (409, "idempotency_in_progress")
    clock.advance(minutes=3)
    retry = send(api, request)
    assert_replay_of(retry, first)
    assert head(api) == stored
    assert_replay_of(send(api, request), first)  # now from the answer kept this time


@on_sqlite
def test_a_claim_left_unfinished_by_a_command_that_stored_nothing_runs_again(
    api: Api, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No receipt, no replay: the retry of a request whose command stored nothing (here
    refused by ``If-Match``, which is not part of the request's hash) is decided afresh."""
    request = accept(api)
    store = api.app.state.idempotency
    headers = {**api.as_(request.who), "Idempotency-Key": KEY, "If-Match": '"1"'}
    with monkeypatch.context() as crash:
        crash.setattr(store, "acomplete", never_kept)
        crash.setattr(store, "release", lambda *_: None)
        refused = api.client.post(request.path, json=request.body, headers=headers)
    assert refused.status_code == 412, refused.text
    stored = head(api)
    clock.advance(minutes=3)
    retry = send(api, request)
    assert retry.status_code == 200, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert head(api) > stored
    receipt = receipt_of(api, request.who)
    assert receipt is not None and receipt.position == head(api)


# -- concurrency --------------------------------------------------------------------------------

THREADS = 8


def test_concurrent_requests_with_one_key_place_one_order(api: Api) -> None:
    request = place_order(api)
    headers = {**api.as_(request.who), "Idempotency-Key": KEY}
    before = head(api)
    start = threading.Barrier(THREADS, timeout=30)  # released together, never hangs

    def place(_: int) -> httpx.Response:
        start.wait()
        return api.client.post(request.path, json=request.body, headers=headers)

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(place, range(THREADS)))

    statuses = sorted(a.status_code for a in answers)
    created = [a for a in answers if a.status_code == 201]
    busy = [a for a in answers if a.status_code == 409]
    assert len(created) + len(busy) == THREADS, statuses
    assert created, statuses
    assert len({a.json()["id"] for a in created}) == 1
    originals = [a for a in created if "idempotent-replayed" not in a.headers]
    assert len(originals) == 1, statuses
    assert {a.json()["code"] for a in busy} <= {"idempotency_in_progress"}
    assert all(a.headers.get("retry-after") for a in busy)
    assert head(api) == before + 1  # one OrderPlaced event
    orders = items(api, "/v1/orders", request.who)
    assert [o["id"] for o in orders] == [created[0].json()["id"]]


# -- claims owned by a process start ------------------------------------------------------------


def another_store(api: Api, clock: FakeClock, owner: str | None = None) -> IdempotencyStore:
    """The store of another process start on the same database."""
    store = IdempotencyStore(api.app.state.idempotency.db, clock, owner)
    store.setup()
    return store


def test_a_claim_whose_owner_is_gone_is_taken_over_at_once(api: Api, clock: FakeClock) -> None:
    """The process that held the claim stopped (on PostgreSQL its session's advisory lock is
    released; on SQLite its owner is no live store of this process): no 2-minute wait."""
    earlier = another_store(api, clock)
    assert earlier.claim("caller", KEY, "hash").won
    earlier.close()  # what the death of its process does
    started = clock.now
    claim = api.app.state.idempotency.claim("caller", KEY, "hash")
    assert claim.won and claim.recheck  # taken over, looking for the receipt first
    assert clock.now == started  # the clock has not moved


def test_a_live_owners_claim_is_not_taken_over(api: Api, clock: FakeClock) -> None:
    running = another_store(api, clock)
    try:
        assert running.claim("caller", KEY, "hash").won
        store = api.app.state.idempotency
        assert not store.claim("caller", KEY, "hash").won
        clock.advance(minutes=3)  # the last resort still holds
        claim = store.claim("caller", KEY, "hash")
        assert claim.won and claim.recheck
    finally:
        running.close()


@on_sqlite
def test_a_claim_whose_owners_process_no_longer_runs_is_taken_over_at_once(
    api: Api, clock: FakeClock
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # exited and reaped: its pid names no process
    dead = another_store(api, clock, owner=f"{gone.pid}:an-earlier-start")
    assert dead.claim("caller", KEY, "hash").won
    claim = api.app.state.idempotency.claim("caller", KEY, "hash")
    assert claim.won and claim.recheck


def test_a_retry_after_its_owner_died_is_answered_from_the_receipt_at_once(
    api: Api, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process died after the commit and before keeping the answer; the restarted one
    answers the retry from the receipt at once, marked replayed, acting no second time."""
    request = place_order(api)
    earlier = another_store(api, clock)
    state = api.app.state
    current = state.idempotency
    state.idempotency = earlier  # the earlier start took the key
    try:
        with monkeypatch.context() as crash:
            crash.setattr(earlier, "acomplete", never_kept)  # and died before keeping it
            first = send(api, request)
    finally:
        state.idempotency = current
    earlier.close()
    assert first.status_code == 201, first.text
    stored = head(api)
    retry = send(api, request)
    assert_replay_of(retry, first)
    assert head(api) == stored


def test_a_claim_whose_insert_was_tried_twice_is_still_won(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claims' INSERT committed but its answer was lost, and the statement was tried
    again on a fresh connection (``Database.returning``): the second try meets the first's
    row. That row is this very claim (its ``claim_id``), so the key is won — not refused as
    in progress, with nobody to finish it, for two minutes."""
    store = api.app.state.idempotency
    writer = store._writer
    first = writer._insert_claims

    def committed_then_tried_again(jobs: Any) -> set[int]:
        first(jobs)  # committed; the answer "lost"
        return first(jobs)  # the retry: nothing inserted

    monkeypatch.setattr(writer, "_insert_claims", committed_then_tried_again)
    claim = store.claim("caller", KEY, "hash")
    monkeypatch.undo()
    assert claim.won and not claim.recheck
    assert not store.claim("caller", KEY, "hash").won, "a second request still waits"
