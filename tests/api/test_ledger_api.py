"""docs/api.md "Escrow ledger": the escrow ledger over HTTP, on SQLite and PostgreSQL.

Money moves only through real requests (orders, the sandbox checkout, the parties' and
support's commands, the gateway's webhook); the books are then read as an auditor would.
The platform fee is set to 12.5 % here, so a fee hard-coded at the default 20 % fails, and
100.04 MAD has a fee of exactly 12.505 MAD, which banker's rounding makes 12.50 (not 12.51).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from api.runtime.timers import funds_clearance
from ledger.gateway.signing import signature_of
from ledger.settings import Settings, load_settings
from tests.api.conftest import BASIC, Api
from tests.conftest import START, FakeClock

ACCOUNT_KEYS = {"account", "debits", "credits", "balance"}
ENTRY_KEYS = {"id", "orderId", "paymentId", "position", "at", "description", "postings"}
POSTING_KEYS = {"account", "debit", "credit"}
GATEWAY, ESCROW, FEES = "assets:gateway", "liabilities:escrow", "revenue:fees"
FL, FL2, CL = "freelancer-1", "freelancer-2", "client-1"
OWED, OWED2 = f"liabilities:freelancer:{FL}", f"liabilities:freelancer:{FL2}"
AUDITOR = ("auditor-1", "auditor")
SUPPORT = ("support-1", "support")
FAR = str(2**62)
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
PATHS = ["/v1/ledger/accounts", "/v1/ledger/entries", "/v1/ledger/trial-balance"]


class Answer(Protocol):
    """An HTTP answer of the test client (``httpx`` or ``httpx2``, whichever it uses)."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def json(self) -> Any: ...


def problem(answer: Answer, status: int, code: str | None = None) -> None:
    """An RFC 9457 answer with ``status`` (and ``code``), as docs/api.md's "Errors" says."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body.keys() >= PROBLEM_KEYS and body["status"] == status, body
    assert code is None or body["code"] == code, body


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The shared settings, with a 12.5 % platform fee."""
    return load_settings(
        LEDGER_DATABASE_URL=database_url,
        LEDGER_VAR_DIR=str(tmp_path / "var"),
        LEDGER_PLATFORM_FEE_PERCENT="12.5",
        _env_file=None,
    )


def head(api: Api) -> int:
    """The event store's last position."""
    return int(api.app.state.ledger.recorder.max_notification_id() or 0)


def staff(api: Api, path: str, who: tuple[str, ...] = AUDITOR) -> Any:
    """``path`` read by staff once the books reached the store's head."""
    return api.read(path, *who, position=head(api))


def act(api: Api, order: dict[str, Any], name: str, *who: str, body: Any = None) -> None:
    """POST the order command ``name`` as ``who`` (an id and its roles): must be 200."""
    answer = api.client.post(f"/v1/orders/{order['id']}/{name}", json=body, headers=api.as_(*who))
    assert answer.status_code == 200, answer.text


def completed(api: Api, price: float = 100.04, fl: str = FL) -> dict[str, Any]:
    """An order paid through the gateway, accepted, delivered and completed by HTTP."""
    order = api.paid_order(api.gig(fl, packages=[{**BASIC, "price": price}]))
    act(api, order, "accept", fl)
    act(api, order, "deliver", fl, body={"message": "done"})
    act(api, order, "complete", CL)
    return order


def postings(entry: dict[str, Any]) -> list[tuple[str, float, float]]:
    return [(p["account"], p["debit"], p["credit"]) for p in entry["postings"]]


def balances(api: Api) -> dict[str, float]:
    return {a["account"]: a["balance"] for a in staff(api, "/v1/ledger/accounts")["data"]}


def mine(api: Api, who: str) -> tuple[float, float]:
    seen = api.read("/v1/me/balance", who, position=head(api))
    assert seen.keys() == {"pendingClearance", "available", "currency"}
    assert seen["currency"] == "MAD"
    return seen["pendingClearance"], seen["available"]


def numbers(*amounts: Any) -> None:
    """Amounts are JSON numbers (never strings nor booleans)."""
    assert all(type(a) in (int, float) for a in amounts), amounts


def test_a_sandbox_paid_and_completed_order_posts_capture_and_release(api: Api) -> None:
    """The whole path through HTTP: the capture puts the payment in escrow, the completion
    releases it to the freelancer less the fee of the settings; every shape is docs/api.md's."""
    order = api.order(api.gig(packages=[{**BASIC, "price": 100.04}]))
    paying = api.client.post(
        f"/v1/orders/{order['id']}/payments",
        json={"paymentMethod": "credit_card"},
        headers=api.as_(CL),
    )
    assert paying.status_code == 201, paying.text
    card = {"cardNumber": "4242424242424242", "expiry": "12/27", "cvv": "123",
            "cardHolderName": "A"}  # fmt: skip
    form = f"/sandbox/payment-form/{paying.json()['checkout']['tokenId']}"
    assert api.client.post(form, json=card).json()["status"] == "paid"
    act(api, order, "accept", FL)
    act(api, order, "deliver", FL, body={"message": "done"})
    act(api, order, "complete", CL)
    payment = api.read(f"/v1/orders/{order['id']}/payment", CL, position=head(api))
    release, capture = staff(api, "/v1/ledger/entries")["data"]
    for entry in (release, capture):
        assert entry.keys() == ENTRY_KEYS
        assert all(p.keys() == POSTING_KEYS for p in entry["postings"])
        numbers(*(p[k] for p in entry["postings"] for k in ("debit", "credit")))
        assert (entry["orderId"], entry["paymentId"]) == (order["id"], payment["id"])
        assert datetime.fromisoformat(entry["at"]) == START
    assert payment["transactionId"] in capture["description"]
    assert capture["position"] < release["position"] <= head(api)
    assert postings(capture) == [(GATEWAY, 100.04, 0), (ESCROW, 0, 100.04)]
    assert postings(release) == [(ESCROW, 100.04, 0), (OWED, 0, 87.54), (FEES, 0, 12.50)]
    accounts = staff(api, "/v1/ledger/accounts")["data"]
    assert all(a.keys() == ACCOUNT_KEYS for a in accounts)
    numbers(*(a[k] for a in accounts for k in ("debits", "credits", "balance")))
    assert [(a["account"], a["debits"], a["credits"], a["balance"]) for a in accounts] == [
        (GATEWAY, 100.04, 0, 100.04),
        (ESCROW, 100.04, 100.04, 0),
        (OWED, 0, 87.54, 87.54),
        (FEES, 0, 12.50, 12.50),
    ]
    trial = staff(api, "/v1/ledger/trial-balance")
    assert trial == {"debits": 200.08, "credits": 200.08, "balanced": True}
    numbers(trial["debits"], trial["credits"])
    assert mine(api, FL) == (87.54, 0)


def test_a_mutual_cancellation_refunds_the_client_from_escrow(api: Api) -> None:
    """What escrow held goes back through the gateway; nobody earns anything."""
    order = api.paid_order(api.gig())
    act(api, order, "accept", FL)
    act(api, order, "cancellation-requests", CL, body={"reason": "Changed my mind"})
    act(api, order, "cancellation-requests/accept", FL)
    refund, _ = staff(api, f"/v1/ledger/entries?orderId={order['id']}")["data"]
    assert postings(refund) == [(ESCROW, 100, 0), (GATEWAY, 0, 100)]
    assert refund["description"].startswith("refund to the client")
    assert balances(api) == {GATEWAY: 0, ESCROW: 0}
    assert staff(api, "/v1/ledger/trial-balance")["balanced"] is True
    assert mine(api, FL) == (0, 0)


def test_a_dispute_split_releases_what_the_freelancer_keeps_and_refunds_the_rest(
    api: Api,
) -> None:
    """Support refunds 40 of 200: the fee is 12.5 % of the 160 kept, not of the 200 paid."""
    order = api.paid_order(api.gig(packages=[{**BASIC, "price": 200}]))
    act(api, order, "accept", FL)
    act(api, order, "disputes", CL, body={"reason": "Half done"})
    act(api, order, "disputes/resolve", *SUPPORT, body={"outcome": "split", "refundAmount": 40})
    refund, release, _ = staff(api, f"/v1/ledger/entries?orderId={order['id']}")["data"]
    assert postings(release) == [(ESCROW, 160, 0), (OWED, 0, 140), (FEES, 0, 20)]
    assert "split" in release["description"]
    assert postings(refund) == [(ESCROW, 40, 0), (GATEWAY, 0, 40)]
    assert balances(api) == {GATEWAY: 160, ESCROW: 0, OWED: 140, FEES: 20}
    assert staff(api, "/v1/ledger/trial-balance") == {
        "debits": 400,
        "credits": 400,
        "balanced": True,
    }
    assert mine(api, FL) == (140, 0)


def refunded_at_gateway(api: Api, order: dict[str, Any], centimes: int, webhook: str) -> None:
    """The gateway's signed ``transaction.refunded`` webhook, as it sends it: recorded."""
    body = json.dumps({
        "id": webhook, "event_name": "transaction.refunded", "sandbox": True,
        "payload": {"transaction": {"id": "tx-1", "status": "refunded",
                    "order_id": order["id"], "amount": centimes, "currency": "MAD"}},
    }).encode()  # fmt: skip
    signature = signature_of(api.app.state.ledger.gateway._key, body)
    answer = api.client.post(
        "/v1/webhooks/youcanpay", content=body, headers={"X-Youcanpay-Signature": signature}
    )
    assert answer.json() == {"status": "recorded"}, answer.text


def test_a_refund_after_the_payout_is_taken_back_from_the_share_and_the_fee(api: Api) -> None:
    """Escrow is empty after completion, so a refund the gateway makes then comes from the
    freelancer's pending share and the fee, in the proportion they were released
    (87.5 : 12.5); refunding everything leaves every account at zero, none below."""
    order = completed(api, price=100)
    refunded_at_gateway(api, order, 5_000, "evt-1")
    clawback = staff(api, "/v1/ledger/entries?limit=1")["data"][0]
    assert postings(clawback) == [(OWED, 43.75, 0), (FEES, 6.25, 0), (GATEWAY, 0, 50)]
    assert "after the payout" in clawback["description"]
    assert balances(api) == {GATEWAY: 50, ESCROW: 0, OWED: 43.75, FEES: 6.25}
    assert staff(api, "/v1/ledger/trial-balance")["balanced"] is True
    assert mine(api, FL) == (43.75, 0)
    refunded_at_gateway(api, order, 5_000, "evt-2")
    assert balances(api) == {GATEWAY: 0, ESCROW: 0, OWED: 0, FEES: 0}
    assert mine(api, FL) == (0, 0)


def test_entries_are_filtered_and_paged_newest_first(api: Api) -> None:
    """orderId and account filter; limit and startingAfter walk the same list the one page
    shows; a cursor outside the filtered list is refused, not silently skipped."""
    first, second = completed(api), completed(api, price=50, fl=FL2)
    everything = staff(api, "/v1/ledger/entries?limit=100")
    assert everything["hasMore"] is False
    positions = [e["position"] for e in everything["data"]]
    assert len(positions) == 4 and positions == sorted(positions, reverse=True)
    walked, cursor, more = [], "", True
    while more:
        page = staff(api, f"/v1/ledger/entries?limit=1{cursor}")
        walked += page["data"]
        more, cursor = page["hasMore"], f"&startingAfter={page['data'][-1]['id']}"
    assert walked == everything["data"]
    by_order = staff(api, f"/v1/ledger/entries?orderId={first['id']}")["data"]
    assert {e["orderId"] for e in by_order} == {first["id"]} and len(by_order) == 2
    fees = staff(api, f"/v1/ledger/entries?account={FEES}")["data"]
    assert [e["orderId"] for e in fees] == [second["id"], first["id"]]
    [owed2] = staff(api, f"/v1/ledger/entries?account={OWED2}")["data"]
    assert postings(owed2) == [(ESCROW, 50, 0), (OWED2, 0, 43.75), (FEES, 0, 6.25)]
    both = f"/v1/ledger/entries?orderId={first['id']}&account={OWED2}"
    assert staff(api, both) == {"data": [], "hasMore": False}
    capture = by_order[-1]["id"]
    outside = api.client.get(
        f"/v1/ledger/entries?account={FEES}&startingAfter={capture}", headers=api.as_(*AUDITOR)
    )
    problem(outside, 422, "invalid_cursor")


BAD = [
    ("limit=0", 422, "validation_failed"),
    ("limit=101", 422, "validation_failed"),
    ("limit=ten", 422, "validation_failed"),
    ("limit=1.5", 422, "validation_failed"),
    ("account=" + "a" * 301, 422, "validation_failed"),
    ("orderId=" + "1" * 65, 422, "validation_failed"),
    ("startingAfter=" + "1" * 65, 422, "validation_failed"),
    ("startingAfter=00000000-0000-0000-0000-000000000000", 422, "invalid_cursor"),
    ("account=%00", 400, None),
]
ODD = {"account=x'%3B DROP TABLE escrow_postings%3B--": 0, "account=%25": 0, "orderId=x": 0,
       "account=%C3%BC%E2%82%AC": 0, "account=": None, "orderId=&account=": None,
       f"account={FEES}&limit=100": 1}  # fmt: skip


def test_odd_list_parameters_are_refused_or_answered_never_a_500(api: Api) -> None:
    """Bad limits, overlong filters and foreign cursors are problems; strange but valid
    filters simply match nothing (and are never run as SQL)."""
    completed(api)
    for query, status, code in BAD:
        answer = api.client.get(f"/v1/ledger/entries?{query}", headers=api.as_(*AUDITOR))
        problem(answer, status, code)
    for query, count in ODD.items():
        page = staff(api, f"/v1/ledger/entries?{query}")
        assert page["hasMore"] is False, query
        assert count is None or len(page["data"]) == count, (query, page)
    assert staff(api, "/v1/ledger/trial-balance")["debits"] == 200.08


def test_only_staff_read_the_books(api: Api) -> None:
    """No token is 401, a party's token 403 (the books show everyone's money); support,
    auditors and admins read them."""
    completed(api)
    for path in PATHS:
        problem(api.client.get(path), 401)
        bad = api.client.get(path, headers={"Authorization": "Bearer not-a-jwt"})
        problem(bad, 401)
        for party in (FL, CL, "someone"):
            problem(api.client.get(path, headers=api.as_(party)), 403, "forbidden")
        seen = [staff(api, path, who) for who in (SUPPORT, AUDITOR, ("admin-1", "admin"))]
        assert seen[0] == seen[1] == seen[2]


def test_everyone_reads_only_their_own_balance(api: Api) -> None:
    """The freelancer sees what is owed to them; the client, another user and staff see
    zeros, never someone else's figures; no token is 401."""
    completed(api)
    assert mine(api, FL) == (87.54, 0)
    for who in (CL, FL2, "support-1"):
        assert mine(api, who) == (0, 0)
    problem(api.client.get("/v1/me/balance"), 401)


def test_funds_clear_per_order_after_the_clearance_days(
    api: Api, clock: FakeClock, settings: Settings
) -> None:
    """Released money is pending until LEDGER_CLEARANCE_DAYS pass, then available, with a
    FundsCleared event by the clock; the timer acts once per order and moves no money."""
    state = api.app.state
    days = settings.clearance_days
    clear = funds_clearance(state.ledger, state.read_models, timedelta(days=days), clock)
    early = completed(api, price=100)
    clock.advance(days=days - 1)
    late = completed(api, price=100)
    assert mine(api, FL) == (175, 0)
    assert clear() == 0, "nothing is due yet"
    books = staff(api, "/v1/ledger/accounts"), staff(api, "/v1/ledger/entries")
    clock.advance(days=1, seconds=1)
    assert clear() == 1
    assert mine(api, FL) == (87.5, 87.5)
    cleared = api.read(f"/v1/orders/{early['id']}/history", FL, position=head(api))["data"][-1]
    assert (cleared["event"], cleared["actor"]) == ("FundsCleared", {"id": "system:clock",
                                                                     "role": "clock"})  # fmt: skip
    assert (cleared["status"], cleared["stage"]) == ("completed", "closed")
    last = api.read(f"/v1/orders/{late['id']}/history", FL, position=head(api))["data"][-1]
    assert last["event"] == "OrderCompleted"
    position = head(api)
    assert clear() == 0, "cleared funds do not clear twice"
    assert head(api) == position
    assert (staff(api, "/v1/ledger/accounts"), staff(api, "/v1/ledger/entries")) == books
    clock.advance(days=days)
    assert clear() == 1
    assert mine(api, FL) == (0, 175)


def test_the_books_honour_min_position(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the head is 503 with Retry-After at once; a stranger is 401 first; the wait is
    for the escrow read model, which counts events it does not use as processed."""
    gig = api.client.post("/v1/gigs", json={"title": "T", "packages": [BASIC]}, headers=api.as_(FL))
    asked: list[Any] = []
    real = api.app.state.runner.wait_for

    def spy(position: int, timeout: float, names: Any = None) -> bool:
        asked.append(tuple(names or ()))
        return bool(real(position, timeout, names))

    monkeypatch.setattr(api.app.state.runner, "wait_for", spy)
    for path in [*PATHS, "/v1/me/balance"]:
        who = AUDITOR if path != "/v1/me/balance" else (FL,)
        far = api.client.get(path, headers={**api.as_(*who), "X-Ledger-Min-Position": FAR})
        problem(far, 503, "not_ready")
        assert far.headers["Retry-After"] == "1"
        assert api.client.get(path, headers={"X-Ledger-Min-Position": FAR}).status_code == 401
        after = {"X-Ledger-Min-Position": gig.headers["X-Ledger-Position"]}
        fresh = api.client.get(path, headers={**api.as_(*who), **after})
        assert fresh.status_code == 200, fresh.text
    assert set(asked) == {("escrow",)}
