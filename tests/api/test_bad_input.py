"""Bad input → a 4xx problem+json, and nothing stored: the event store's head does not move.

The tables run against one app per backend for the whole module (``shared``), seeded with a
gig and an order in each state the commands need, so that a bad body reaches the deepest check
that could refuse it (the route's schema, or the domain's own validation). A case the API
wrongly accepted moves the head, and fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.http.app import create_app
from ledger.settings import load_settings
from tests.api.conftest import BASIC, Api
from tests.api.test_contract import assert_problem
from tests.conftest import FakeClock, postgres_database

CLIENT, FREELANCER, NEWCOMER = ("client-1",), ("freelancer-1",), ("freelancer-2",)
SUPPORT = ("support-1", "support")
GIGS, ORDERS, PAYMENTS = "/v1/gigs", "/v1/orders", "/v1/payments"
PAID, PENDING, DISPUTED = "/v1/orders/<paid>", "/v1/orders/<pending>", "/v1/orders/<disputed>"
JSON = {"Content-Type": "application/json"}
LONG = "x" * 5_001
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@dataclass
class Shared:
    """One app for the module, and the ids its placeholders stand for."""

    api: Api
    seeds: dict[str, str]  # "<gig>", "<pending>", "<paid>", "<disputed>" → id

    def head(self) -> int:
        return int(self.api.app.state.ledger.recorder.max_notification_id() or 0)

    def fill(self, value: Any) -> Any:
        """``value`` with every placeholder replaced by its seeded id."""
        if isinstance(value, str):
            for name, seeded in self.seeds.items():
                value = value.replace(name, seeded)
            return value
        if isinstance(value, dict):
            return {key: self.fill(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.fill(item) for item in value)
        return value

    def send(self, method: str, path: str, who: tuple[str, ...], **kwargs: Any) -> httpx.Response:
        headers = {**self.api.as_(*who), **kwargs.pop("headers", {})}
        return self.api.client.request(method, self.fill(path), headers=headers, **kwargs)

    def refuses(self, response: httpx.Response, status: int, code: str | None = None) -> None:
        assert_problem(response, status, code)


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """An empty database for the module: a SQLite file, or a PostgreSQL database (dropped)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'ledger.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    tmp = tmp_path_factory.mktemp("bad-input")
    with database(request.param, tmp) as url:
        config = load_settings(
            LEDGER_DATABASE_URL=url, LEDGER_VAR_DIR=str(tmp / "var"), _env_file=None
        )
        app = create_app(config, clock=FakeClock())
        with TestClient(app, raise_server_exceptions=False) as client:
            api = Api(client, app)
            gig = api.gig()
            paid = api.paid_order(gig, transaction="tx-1")
            disputed = api.paid_order(gig, transaction="tx-2")
            path = f"/v1/orders/{disputed['id']}/disputes"
            opened = client.post(path, json={"reason": "Late"}, headers=api.as_(*CLIENT))
            assert opened.status_code == 200, opened.text
            pending = api.order(gig)
            ids = {"<gig>": gig, "<pending>": pending, "<paid>": paid, "<disputed>": disputed}
            yield Shared(api, {name: item["id"] for name, item in ids.items()})


def gig(**package: Any) -> dict[str, Any]:
    """A gig body whose one package has these fields (``...`` leaves a field out)."""
    fields = {**BASIC, **package}
    return {"title": "Logo", "packages": [{k: v for k, v in fields.items() if v is not ...}]}


def order(**fields: Any) -> dict[str, Any]:
    body = {"gigId": "<gig>", "packageId": "basic", **fields}
    return {k: v for k, v in body.items() if v is not ...}


def split(amount: Any) -> dict[str, Any]:
    return {"outcome": "split", "refundAmount": amount}


BAD_BODIES: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {  # each must be a 422
    (GIGS, NEWCOMER): {
        "no title": {"packages": [BASIC]},
        "no packages": {"title": "Logo"},
        "empty packages": {"title": "Logo", "packages": []},
        "4 packages": {"title": "Logo", "packages": [BASIC] * 4},
        "twice basic": {"title": "Logo", "packages": [BASIC, BASIC]},
        "packages an object": {"title": "Logo", "packages": BASIC},
        "extra field": {**gig(), "discount": 5},
        "package extra field": gig(color="red"),
        "title a number": {**gig(), "title": 42},
        "title over 200": {**gig(), "title": "t" * 201},
        "title blank": {**gig(), "title": "   "},
        "description over 5000": gig(description=LONG),
        "description empty": gig(description=""),
        "packageId unknown": gig(packageId="gold"),
        "packageId upper case": gig(packageId="BASIC"),
        "price missing": gig(price=...),
        "price a string": gig(price="100"),
        "price 3 decimals": gig(price=10.005),
        "price negative": gig(price=-5),
        "price zero": gig(price=0),
        "price over 1,000,000.00": gig(price=1_000_000.01),
        "price a bool": gig(price=True),
        "price null": gig(price=None),
        "price a list": gig(price=[100]),
        "deliveryDays 3.5": gig(deliveryDays=3.5),
        "deliveryDays a string": gig(deliveryDays="3"),
        "deliveryDays 0": gig(deliveryDays=0),
        "deliveryDays 366": gig(deliveryDays=366),
        "deliveryDays a bool": gig(deliveryDays=True),
        "revisions negative": gig(revisions=-1),
        "revisions 101": gig(revisions=101),
        "revisions 1.5": gig(revisions=1.5),
    },
    (ORDERS, CLIENT): {
        "empty": {},
        "no gigId": order(gigId=...),
        "no packageId": order(packageId=...),
        "extra field": order(coupon="FREE"),
        "gigId a number": order(gigId=42),
        "gigId null": order(gigId=None),
        "gigId over 64": order(gigId="g" * 65),
        "packageId unknown": order(packageId="gold"),
        "packageId a list": order(packageId=["basic"]),
        "requirements over 5000": order(requirements=LONG),
        "requirements empty": order(requirements=""),
        "requirements a number": order(requirements=7),
    },
    (f"{PAID}/requirements", CLIENT): {
        "no text": {},
        "text empty": {"text": ""},
        "text a number": {"text": 5},
        "text over 5000": {"text": LONG},
        "extra field": {"text": "x", "urgent": True},
    },
    (f"{PAID}/deliver", FREELANCER): {
        "message null": {"message": None},
        "message a list": {"message": ["a"]},
    },
    (f"{PAID}/request-revision", CLIENT): {"reason over 5000": {"reason": LONG}},
    (f"{PAID}/cancellation-requests", CLIENT): {"no reason": {}, "reason a bool": {"reason": True}},
    (f"{PAID}/disputes", CLIENT): {"reason blank": {"reason": "   "}},
    (f"{PAID}/cancel", SUPPORT): {
        "no reason": {},
        "reason unknown": {"reason": "bogus"},
        "reason not a direct one": {"reason": "mutual_agreement"},
        "reason a number": {"reason": 1},
        "note over 5000": {"reason": "policy_violation", "note": LONG},
        "extra field": {"reason": "policy_violation", "why": "x"},
    },
    (f"{DISPUTED}/disputes/resolve", SUPPORT): {
        "outcome unknown": {"outcome": "bogus"},
        "outcome null": {"outcome": None},
        "split without refundAmount": {"outcome": "split"},
        "refundAmount a string": split("10"),
        "refundAmount 3 decimals": split(10.001),
        "refundAmount negative": split(-5),
        "refundAmount zero": split(0),
        "refundAmount all that was paid": split(100),
        "refundAmount over 1,000,000.00": split(1_000_000.01),
        "refundAmount on a release": {"outcome": "release", "refundAmount": 10},
    },
    (f"{PAID}/review", CLIENT): {
        "no rating": {},
        "rating 1.5": {"rating": 1.5},
        "rating a string": {"rating": "5"},
        "rating a bool": {"rating": True},
        "rating 0": {"rating": 0},
        "rating 6": {"rating": 6},
        "comment over 5000": {"rating": 5, "comment": LONG},
    },
    (f"{PENDING}/payments", CLIENT): {
        "no paymentMethod": {},
        "paymentMethod unknown": {"paymentMethod": "bitcoin"},
        "paymentMethod malformed": {"paymentMethod": "Credit Card"},
        "paymentMethod a number": {"paymentMethod": 5},
        "paymentMethod no longer taken": {"paymentMethod": "paypal"},
        "extra field": {"paymentMethod": "credit_card", "amount": 1},
    },
}


@pytest.mark.parametrize(
    ("path", "who", "body"),
    [
        pytest.param(path, who, body, id=f"{path} {case}")
        for (path, who), cases in BAD_BODIES.items()
        for case, body in cases.items()
    ],
)
def test_bad_bodies(shared: Shared, path: str, who: tuple[str, ...], body: Any) -> None:
    before = shared.head()
    shared.refuses(shared.send("POST", path, who, json=shared.fill(body)), 422)
    assert shared.head() == before


WIRE_AMOUNTS = {  # a price as JSON text that a parser might round, overflow or let through
    "20 decimals, beyond a double": "1.00000000000000000001",
    "3 decimals near the maximum": "999999.999",
    "overflows a double": "1e400",
    "underflows a double": "1e-400",
    "minus zero": "-0",
    "5001 digits": "1" + "0" * 5_000,
    "NaN": "NaN",
    "Infinity": "Infinity",
}


@pytest.mark.parametrize("amount", WIRE_AMOUNTS.values(), ids=WIRE_AMOUNTS.keys())
def test_amounts_as_written_on_the_wire(shared: Shared, amount: str) -> None:
    body = json.dumps(gig(price="PRICE")).replace('"PRICE"', amount).encode()
    before = shared.head()
    response = shared.send("POST", GIGS, NEWCOMER, content=body, headers=JSON)
    assert response.status_code in (400, 422), response.text
    shared.refuses(response, response.status_code)
    assert shared.head() == before


MALFORMED = {
    "unclosed": b"{",
    "missing value": b'{"gigId": }',
    "single quotes": b"{'gigId': '<gig>', 'packageId': 'basic'}",
    "trailing garbage": b'{"gigId": "<gig>", "packageId": "basic"} x',
    "trailing comma": b'{"gigId": "<gig>", "packageId": "basic",}',
    "not UTF-8": b'{"gigId": "<gig>", "packageId": "basic", "requirements": "\xff"}',
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_json(shared: Shared, raw: bytes) -> None:
    content = shared.fill(raw.decode("latin-1")).encode("latin-1")
    before = shared.head()
    response = shared.send("POST", ORDERS, CLIENT, content=content, headers=JSON)
    shared.refuses(response, 400, "malformed_json")
    assert shared.head() == before


ORDER_TEXT = b'{"gigId": "<gig>", "packageId": "basic"}'
NOT_A_JSON_OBJECT = {  # a valid order in every form but a JSON object
    "empty body": {"content": b"", "headers": JSON},
    "null body": {"content": b"null", "headers": JSON},
    "array body": {"content": b"[" + ORDER_TEXT + b"]", "headers": JSON},
    "text/plain": {"content": ORDER_TEXT, "headers": {"Content-Type": "text/plain"}},
    "application/xml": {"content": ORDER_TEXT, "headers": {"Content-Type": "application/xml"}},
    "no content type": {"content": ORDER_TEXT},
    "form": {"data": {"gigId": "<gig>", "packageId": "basic"}},
    "multipart": {"files": {"gigId": (None, "<gig>"), "packageId": (None, "basic")}},
}


@pytest.mark.parametrize("form", NOT_A_JSON_OBJECT.values(), ids=NOT_A_JSON_OBJECT.keys())
def test_bodies_that_are_not_a_json_object(shared: Shared, form: dict[str, Any]) -> None:
    kwargs = {k: v if k == "headers" else shared.fill(v) for k, v in form.items()}
    if "content" in kwargs:
        kwargs["content"] = shared.fill(kwargs["content"].decode()).encode()
    before = shared.head()
    response = shared.send("POST", ORDERS, CLIENT, **kwargs)
    assert response.status_code in (400, 415, 422), response.text
    shared.refuses(response, response.status_code)
    assert shared.head() == before


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_64_kib_is_413(shared: Shared, chunked: bool) -> None:
    body = json.dumps(shared.fill(order(requirements="x" * 70_000))).encode()
    content = (body[i : i + 1024] for i in range(0, len(body), 1024)) if chunked else body
    before = shared.head()
    response = shared.send("POST", ORDERS, CLIENT, content=content, headers=JSON)
    shared.refuses(response, 413, "payload_too_large")
    assert shared.head() == before


TEXT = {"text": "x"}
BAD_HEADERS = {  # case → method, path, who, body, headers, status
    "If-Match unquoted": ("POST", f"{PAID}/requirements", CLIENT, TEXT, {"If-Match": "2"}, 400),
    "If-Match a word": ("POST", f"{PAID}/requirements", CLIENT, TEXT, {"If-Match": "abc"}, 400),
    "If-Match no version": ("POST", f"{PAID}/requirements", CLIENT, TEXT, {"If-Match": '"x"'}, 400),
    "If-Match a list": (
        "POST",
        f"{PAID}/requirements",
        CLIENT,
        TEXT,
        {"If-Match": '"1", "2"'},
        400,
    ),
    "If-Match empty tag": ("POST", f"{PAID}/requirements", CLIENT, TEXT, {"If-Match": '""'}, 400),
    "If-Match 1.5": ("POST", f"{PAID}/accept", FREELANCER, None, {"If-Match": "1.5"}, 400),
    "Idempotency-Key 256": ("POST", ORDERS, CLIENT, order(), {"Idempotency-Key": "k" * 256}, 422),
    "Idempotency-Key empty": ("POST", ORDERS, CLIENT, order(), {"Idempotency-Key": ""}, 422),
    "Idempotency-Key tab": ("POST", ORDERS, CLIENT, order(), {"Idempotency-Key": "a\tb"}, 422),
    "Idempotency-Key gig": ("POST", GIGS, NEWCOMER, gig(), {"Idempotency-Key": "k" * 256}, 422),
    "Content-Length a word": ("POST", ORDERS, CLIENT, order(), {"Content-Length": "abc"}, 400),
    "min position -1": ("GET", ORDERS, CLIENT, None, {"X-Ledger-Min-Position": "-1"}, 422),
    "min position a word": ("GET", ORDERS, CLIENT, None, {"X-Ledger-Min-Position": "x"}, 422),
    "min position 1.5": ("GET", PAID, CLIENT, None, {"X-Ledger-Min-Position": "1.5"}, 422),
}


@pytest.mark.parametrize(
    ("method", "path", "who", "body", "headers", "status"),
    BAD_HEADERS.values(),
    ids=BAD_HEADERS.keys(),
)
def test_bad_headers(
    shared: Shared,
    method: str,
    path: str,
    who: tuple[str, ...],
    body: Any,
    headers: dict[str, str],
    status: int,
) -> None:
    content = None if body is None else json.dumps(shared.fill(body)).encode()
    before = shared.head()
    response = shared.send(method, path, who, content=content, headers={**JSON, **headers})
    shared.refuses(response, status)
    assert shared.head() == before


REFUSED, NEVER_5XX = (422,), (200, 400, 422)
PAID_CURSOR = f"{ORDERS}?startingAfter=<paid>"
CURSORS = {  # case → startingAfter, problem code
    "unknown": (UNKNOWN, "invalid_cursor"),
    "a word": ("nope", "invalid_cursor"),
    "65 chars": ("c" * 65, "validation_failed"),
}
BAD_QUERIES = {  # case → path, who, allowed statuses, problem code
    **{
        f"{path}?limit={limit}": (f"{path}?limit={limit}", SUPPORT, REFUSED, "validation_failed")
        for path in (ORDERS, GIGS, PAYMENTS)
        for limit in ("0", "101", "x", "-1", "1.5", "")
    },
    **{
        f"{path} startingAfter {case}": (f"{path}?startingAfter={cursor}", SUPPORT, REFUSED, code)
        for path in (ORDERS, GIGS, PAYMENTS)
        for case, (cursor, code) in CURSORS.items()
    },
    **{  # no parameter may hold a NUL character: refused before any route runs
        f"{path} startingAfter NUL": (f"{path}?startingAfter=a%00b", SUPPORT, (400,), "bad_request")
        for path in (ORDERS, GIGS, PAYMENTS)
    },
    "cursor filtered out": (f"{PAID_CURSOR}&status=pending", CLIENT, REFUSED, "invalid_cursor"),
    "order status unknown": (f"{ORDERS}?status=bogus", CLIENT, REFUSED, "validation_failed"),
    "payment status unknown": (f"{PAYMENTS}?status=paid", CLIENT, REFUSED, "validation_failed"),
    "as unknown": (f"{ORDERS}?as=admin", CLIENT, REFUSED, "validation_failed"),
    "version 0": (f"{PAID}?version=0", CLIENT, REFUSED, "validation_failed"),
    "version a word": (f"{PAID}?version=x", CLIENT, REFUSED, "validation_failed"),
    "asOf without timezone": (f"{PAID}?asOf=2026-01-05T09:00:00", CLIENT, REFUSED, None),
    "asOf a date": (f"{PAID}?asOf=2026-01-05", CLIENT, REFUSED, None),
    "asOf a word": (f"{PAID}?asOf=yesterday", CLIENT, REFUSED, None),
    "userId NUL": (f"{ORDERS}?userId=%00", SUPPORT, NEVER_5XX, None),
    "freelancerId NUL": (f"{GIGS}?freelancerId=%00", CLIENT, NEVER_5XX, None),
    "orderId NUL": (f"{PAYMENTS}?orderId=%00", SUPPORT, NEVER_5XX, None),
    "transactionId NUL": (f"{PAYMENTS}?transactionId=%00", SUPPORT, NEVER_5XX, None),
}


@pytest.mark.parametrize(
    ("path", "who", "allowed", "code"), BAD_QUERIES.values(), ids=BAD_QUERIES.keys()
)
def test_bad_query_parameters(
    shared: Shared, path: str, who: tuple[str, ...], allowed: tuple[int, ...], code: str | None
) -> None:
    response = shared.send("GET", path, who)
    assert response.status_code in allowed, response.text
    if response.status_code != 200:
        shared.refuses(response, response.status_code, code)


MALFORMED_IDS = [  # method, path, body
    ("GET", "/v1/orders/nope", None),
    ("GET", "/v1/orders/123", None),
    ("GET", "/v1/orders/nope/history", None),
    ("GET", "/v1/orders/nope/payment", None),
    ("GET", "/v1/gigs/nope", None),
    ("GET", "/v1/payments/nope", None),
    ("GET", "/v1/payments/%00", None),
    ("POST", "/v1/orders/nope/accept", None),
    ("POST", "/v1/orders/nope/requirements", {"text": "x"}),
    ("POST", "/v1/orders/nope/cancel", {"reason": "client_withdrew"}),
    ("POST", "/v1/orders/nope/payments", {"paymentMethod": "credit_card"}),
    ("POST", "/v1/orders/<paid>x/accept", None),
]


@pytest.mark.parametrize(("method", "path", "body"), MALFORMED_IDS)
def test_malformed_ids_in_paths_are_404(shared: Shared, method: str, path: str, body: Any) -> None:
    before = shared.head()
    shared.refuses(shared.send(method, path, CLIENT, json=body), 404, "not_found")
    assert shared.head() == before


def test_nul_characters_never_wedge_the_read_side(api: Api) -> None:
    """PostgreSQL text cannot hold U+0000: refuse it, or keep it where it fits, but a client's
    text must never stop the projections (every later read would wait, then answer 503)."""
    good = api.gig()
    requirements = {"gigId": good["id"], "packageId": "basic", "requirements": "a\x00b"}
    answers = [
        api.client.post(GIGS, json={**gig(), "title": "a\x00b"}, headers=api.as_(*NEWCOMER)),
        api.client.post(ORDERS, json=requirements, headers=api.as_(*CLIENT)),
    ]
    for answer in answers:
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            assert_problem(answer, answer.status_code)
    position = api.app.state.ledger.recorder.max_notification_id()
    wait = {"X-Ledger-Min-Position": str(position)}
    read = api.client.get(GIGS, headers={**api.as_(*CLIENT), **wait})
    assert read.status_code == 200, read.text


# -- arbitrary JSON ---------------------------------------------------------------------------

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` seven times in eight, else any JSON value: most bodies get past the first
    field, so the deeper checks are reached too."""
    return st.integers(0, 7).flatmap(lambda n: good if n else ANY_JSON)


PACKAGE_IDS = st.sampled_from(["basic", "standard", "premium", "gold"])
ORDER_BODIES = mostly(
    st.fixed_dictionaries(
        {"gigId": mostly(st.just("<gig>")), "packageId": mostly(PACKAGE_IDS)},
        optional={"requirements": mostly(st.text(max_size=30))},
    )
)
PACKAGES = st.fixed_dictionaries(
    {
        "packageId": mostly(PACKAGE_IDS),
        "price": mostly(st.decimals(-1, 1_000_001, places=2) | st.decimals(0, 10, places=3)),
        "deliveryDays": mostly(st.integers(-1, 400)),
        "revisions": mostly(st.integers(-1, 120)),
        "description": mostly(st.text(max_size=30)),
    }
)
GIG_BODIES = mostly(
    st.fixed_dictionaries(
        {
            "title": mostly(st.text(min_size=1, max_size=30)),
            "packages": mostly(
                st.lists(PACKAGES, min_size=1, max_size=3, unique_by=lambda p: str(p["packageId"]))
            ),
        }
    )
)
FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def never_5xx(shared: Shared, path: str, who: tuple[str, ...], body: Any) -> None:
    """Post ``body`` as JSON (NaN and lone surrogates included, as ``json.dumps`` writes them)."""
    content = json.dumps(shared.fill(body), default=float).encode()  # Decimal prices
    before = shared.head()
    response = shared.send("POST", path, who, content=content, headers=JSON)
    assert response.status_code < 500, response.text
    if response.status_code == 201:
        assert response.headers["content-type"] == "application/json"
    else:
        assert_problem(response, response.status_code)
        assert shared.head() == before


@FUZZ
@given(body=ORDER_BODIES)
def test_arbitrary_json_never_breaks_placing_orders(shared: Shared, body: Any) -> None:
    never_5xx(shared, ORDERS, CLIENT, body)


@FUZZ
@given(body=GIG_BODIES)
def test_arbitrary_json_never_breaks_creating_gigs(shared: Shared, body: Any) -> None:
    never_5xx(shared, GIGS, NEWCOMER, body)
