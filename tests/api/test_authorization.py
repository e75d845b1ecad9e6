"""Who may call what: every endpoint by every kind of caller → the status docs/api.md promises.

docs/api.md, "Authentication": no or bad token → 401 (with ``WWW-Authenticate``); another
user's order or payment → 404 (its existence is not revealed); allowed to see but not to do →
403. Whoever is allowed gets past authorization: 200/201, or a 409 when the order's state (not
the caller) refuses.

One deliberate difference from the first design's "admin may do all" (``ledger.access``): party
actions — accepting, delivering, agreeing to cancel, reviewing … — stay the parties' own;
admin and support take the staff actions only (policy cancellations, dispute resolutions).

The matrix runs on one SQLite app per module. Each command is tried on an order in the
state where that command is valid, so a refusal is the caller's, never the state's: callers
who are refused share one such order per state (a refusal must store nothing, which each
cell checks against the event-store head), and each allowed caller gets a fresh one. A
subset runs again through the ``api`` fixture on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.http.auth import signing_key
from ledger.domain.payment import payment_id_for
from ledger.settings import Settings, load_settings
from tests.api.conftest import Api
from tests.conftest import FakeClock

CLIENT, FREELANCER, OTHER = "client-a", "freelancer-a", "other-user"
SECRET = "authorization-matrix-" + "3f9c1e7a5b2d4086" * 3
FOREIGN_SECRET = "somebody-elses-key-" + "0a1b2c3d4e5f6789" * 3
PROBLEM_JSON = "application/problem+json"

# -- callers ------------------------------------------------------------------------------------

IDENTITIES: dict[str, tuple[str, str]] = {
    "client": (CLIENT, "user"),
    "freelancer": (FREELANCER, "user"),
    "other_user": (OTHER, "user"),
    "support": ("support-1", "support"),
    "auditor": ("auditor-1", "auditor"),
    "admin": ("admin-1", "admin"),
}
"""Callers with a valid token, in the column order of ``MATRIX``."""


def jwt_for(key: str, **claims: Any) -> str:
    """A token signed with ``key``: the client's valid claims, changed by ``claims``
    (a claim given as ``None`` is left out)."""
    now = datetime.now(UTC)
    defaults = {"sub": CLIENT, "roles": ["user"], "iat": now, "exp": now + timedelta(hours=1)}
    merged = {name: value for name, value in {**defaults, **claims}.items() if value is not None}
    return jwt.encode(merged, key, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PAST = datetime(2020, 1, 1, tzinfo=UTC)
UNAUTHENTICATED: dict[str, Callable[[str], dict[str, str]]] = {
    "no_token": lambda key: {},
    "malformed_header": lambda key: {"Authorization": "Bearer not-a-jwt"},
    "another_key": lambda key: bearer(jwt_for(FOREIGN_SECRET)),
    "expired": lambda key: bearer(jwt_for(key, exp=PAST, iat=PAST - timedelta(hours=1))),
    "unknown_role": lambda key: bearer(jwt_for(key, roles=["user", "superuser"])),
    "gateway_role": lambda key: bearer(jwt_for(key, roles=["gateway"])),
}
"""Requests that must be 401 whatever they ask; each would otherwise be the client's."""

# -- endpoints ------------------------------------------------------------------------------------

Expect = tuple[int, int, int, int, int, int]

# What each caller with a valid token gets. 200/201: allowed (and done, on an order in the
# state the request needs); 409: allowed, but a rule refuses (the freelancer ordering their
# own gig); 403: sees the order but may not do this; 404: not theirs (not revealed).
# Admin takes staff actions only, never a party's (``ledger.access``).
MATRIX: dict[str, Expect] = {
    #                          client  free  other  support auditor admin
    "create_gig":              (201,   201,  201,   403,    403,    201),
    "list_gigs":               (200,   200,  200,   200,    200,    200),
    "get_gig":                 (200,   200,  200,   200,    200,    200),
    "place_order":             (201,   409,  201,   403,    403,    201),
    "list_orders":             (200,   200,  200,   200,    200,    200),
    "list_orders_of_user":     (403,   403,  403,   200,    200,    200),
    "get_order":               (200,   200,  404,   200,    200,    200),
    "get_order_at_version":    (200,   200,  404,   200,    200,    200),
    "order_history":           (200,   200,  404,   200,    200,    200),
    "accept":                  (403,   200,  404,   403,    403,    403),
    "requirements":            (200,   403,  404,   403,    403,    403),
    "deliver":                 (403,   200,  404,   403,    403,    403),
    "request_revision":        (200,   403,  404,   403,    403,    403),
    "complete":                (200,   403,  404,   403,    403,    403),
    "request_cancellation":    (200,   200,  404,   403,    403,    403),
    "accept_cancellation":     (403,   200,  404,   403,    403,    403),
    "decline_cancellation":    (403,   200,  404,   403,    403,    403),
    "withdraw_cancellation":   (200,   403,  404,   403,    403,    403),
    "cancel_client_withdrew":  (200,   403,  404,   403,    403,    403),
    "cancel_policy_violation": (403,   403,  404,   200,    403,    200),
    "open_dispute":            (200,   200,  404,   403,    403,    403),
    "resolve_dispute":         (403,   403,  404,   200,    403,    200),
    "review":                  (200,   403,  404,   403,    403,    403),
    "create_payment":          (201,   403,  404,   403,    403,    403),
    "order_payment":           (200,   200,  404,   200,    200,    200),
    "list_payments":           (200,   200,  200,   200,    200,    200),
    "get_payment":             (200,   200,  404,   200,    200,    200),
}  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    name: str
    request: str
    """``METHOD path``, the path with ``{order}``, ``{payment}``, ``{gig}`` and ``{client}``."""
    scene: str
    """The state of the order in which the request is valid (``SCENES``)."""
    body: dict[str, Any] | None = None

    @property
    def method(self) -> str:
        return self.request.split()[0]

    @property
    def path(self) -> str:
        return self.request.split()[1]

    def status_for(self, who: str) -> int:
        return MATRIX[self.name][list(IDENTITIES).index(who)]

    def __str__(self) -> str:
        return self.name


GIG = {
    "title": "Another gig",
    "packages": [
        {"packageId": "basic", "price": 50.0, "deliveryDays": 2, "revisions": 0,
         "description": "Small"},
    ],
}  # fmt: skip
ORDERS = "/v1/orders/{order}"
ENDPOINTS = [
    Endpoint("create_gig", "POST /v1/gigs", "paid", GIG),
    Endpoint("list_gigs", "GET /v1/gigs", "paid"),
    Endpoint("get_gig", "GET /v1/gigs/{gig}", "paid"),
    Endpoint("place_order", "POST /v1/orders", "paid", {"gigId": "{gig}", "packageId": "basic"}),
    Endpoint("list_orders", "GET /v1/orders", "paid"),
    Endpoint("list_orders_of_user", "GET /v1/orders?userId={client}", "paid"),
    Endpoint("get_order", f"GET {ORDERS}", "paid"),
    Endpoint("get_order_at_version", f"GET {ORDERS}?version=1", "paid"),
    Endpoint("order_history", f"GET {ORDERS}/history", "paid"),
    Endpoint("accept", f"POST {ORDERS}/accept", "paid"),
    Endpoint("requirements", f"POST {ORDERS}/requirements", "paid", {"text": "Blue, please"}),
    Endpoint("deliver", f"POST {ORDERS}/deliver", "paid", {"message": "Here it is"}),
    Endpoint("request_revision", f"POST {ORDERS}/request-revision", "delivered", {"reason": "Big"}),
    Endpoint("complete", f"POST {ORDERS}/complete", "delivered"),
    Endpoint(
        "request_cancellation", f"POST {ORDERS}/cancellation-requests", "paid", {"reason": "No"}
    ),
    # in the ``cancellation_requested`` scene the client asked: the freelancer answers
    Endpoint(
        "accept_cancellation", f"POST {ORDERS}/cancellation-requests/accept",
        "cancellation_requested",
    ),
    Endpoint(
        "decline_cancellation", f"POST {ORDERS}/cancellation-requests/decline",
        "cancellation_requested",
    ),
    Endpoint(
        "withdraw_cancellation", f"POST {ORDERS}/cancellation-requests/withdraw",
        "cancellation_requested",
    ),
    Endpoint("cancel_client_withdrew", f"POST {ORDERS}/cancel", "pending",
             {"reason": "client_withdrew"}),
    Endpoint("cancel_policy_violation", f"POST {ORDERS}/cancel", "paid",
             {"reason": "policy_violation", "note": "Spam"}),
    Endpoint("open_dispute", f"POST {ORDERS}/disputes", "paid", {"reason": "Not delivered"}),
    Endpoint("resolve_dispute", f"POST {ORDERS}/disputes/resolve", "in_dispute",
             {"outcome": "release"}),
    Endpoint("review", f"POST {ORDERS}/review", "completed", {"rating": 5, "comment": "Great"}),
    Endpoint("create_payment", f"POST {ORDERS}/payments", "pending",
             {"paymentMethod": "credit_card"}),
    Endpoint("order_payment", f"GET {ORDERS}/payment", "paid"),
    Endpoint("list_payments", "GET /v1/payments", "paid"),
    Endpoint("get_payment", "GET /v1/payments/{payment}", "paid"),
]  # fmt: skip
BY_NAME = {endpoint.name: endpoint for endpoint in ENDPOINTS}
assert set(BY_NAME) == set(MATRIX), "every endpoint has one row in the matrix"

# -- the world the requests act on ---------------------------------------------------------------


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {name: fill(item, ids) for name, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


SCENES: dict[str, tuple[str, ...]] = {
    "pending": (),
    "paid": (),
    "delivered": ("freelancer deliver",),
    "completed": ("freelancer deliver", "client complete"),
    "cancellation_requested": ("client cancellation-requests",),
    "in_dispute": ("client disputes",),
}
"""Each scene: a paid order (``pending``: unpaid), then these ``who command`` steps."""
STEP_BODIES = {
    "deliver": {"message": "Done"},
    "cancellation-requests": {"reason": "No longer needed"},
    "disputes": {"reason": "Late"},
}


@dataclass
class World:
    """An app with one freelancer's gig and, per scene, one shared order of the client's."""

    api: Api
    key: str
    gig: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, dict[str, Any]] = field(default_factory=dict)
    _transactions: Iterator[int] = field(default_factory=itertools.count)

    @classmethod
    def build(cls, api: Api, key: str) -> World:
        world = cls(api, key)
        world.gig = api.gig(FREELANCER)
        world.shared = {scene: world.fresh(scene) for scene in SCENES}
        return world

    def fresh(self, scene: str) -> dict[str, Any]:
        """A new order of the client's on the shared gig, brought to ``scene``."""
        if scene == "pending":
            return self.api.order(self.gig, CLIENT)
        order = self.api.paid_order(self.gig, CLIENT, f"tx-{next(self._transactions)}")
        for step in SCENES[scene]:
            who, command = step.split()
            sub = CLIENT if who == "client" else FREELANCER
            response = self.api.client.post(
                f"/v1/orders/{order['id']}/{command}",
                json=STEP_BODIES.get(command),
                headers=self.api.as_(sub),
            )
            assert response.status_code == 200, response.text
            order = response.json()
        return order

    def head(self) -> int:
        return int(self.api.app.state.ledger.recorder.max_notification_id() or 0)

    def ids(self, order: dict[str, Any]) -> dict[str, str]:
        payment = str(payment_id_for(UUID(order["id"])))
        return {"order": order["id"], "payment": payment, "gig": self.gig["id"], "client": CLIENT}

    def call(
        self, endpoint: Endpoint, order: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        """Make ``endpoint``'s request on ``order``; a read first waits for every event."""
        ids = self.ids(order)
        path = fill(endpoint.path, ids)
        if endpoint.method == "GET":
            headers = {**headers, "X-Ledger-Min-Position": str(self.head())}
            return self.api.client.get(path, headers=headers)
        return self.api.client.post(path, json=fill(endpoint.body, ids), headers=headers)

    def items(self, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
        """Every item of a list, page after page, once the read models caught up."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        waiting = {**headers, "X-Ledger-Min-Position": str(self.head())}
        while True:
            page_path = f"{path}{'&' if '?' in path else '?'}limit=100"
            if after is not None:
                page_path += f"&startingAfter={after}"
            response = self.api.client.get(page_path, headers=waiting)
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["data"]
            if not page["hasMore"]:
                return items
            after = page["data"][-1]["id"]


# -- the checks (shared by the SQLite matrix and the subset on both backends) ---------------------


def check_identity(world: World, endpoint: Endpoint, who: str) -> None:
    """``who`` (with a valid token) makes ``endpoint``'s request and gets its table status."""
    expected = endpoint.status_for(who)
    succeeds_by_acting = endpoint.method == "POST" and expected in (200, 201)
    order = world.fresh(endpoint.scene) if succeeds_by_acting else world.shared[endpoint.scene]
    before = world.head()
    response = world.call(endpoint, order, world.api.as_(*IDENTITIES[who]))
    assert response.status_code == expected, f"{endpoint} as {who}: {response.text}"
    if expected >= 400:
        problem = response.json()
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        code = {403: "forbidden", 404: "not_found", 409: "conflict"}[expected]
        assert (problem["status"], problem["code"]) == (expected, code)
        assert world.head() == before, f"{endpoint} as {who} was refused but stored events"
    if succeeds_by_acting and endpoint.path.startswith("/v1/orders/{order}/"):
        answered = response.json()
        assert answered.get("orderId", answered["id"]) == order["id"]


def check_unauthenticated(world: World, endpoint: Endpoint, kind: str) -> None:
    order = world.shared[endpoint.scene]
    before = world.head()
    response = world.call(endpoint, order, UNAUTHENTICATED[kind](world.key))
    assert response.status_code == 401, f"{endpoint} with {kind}: {response.text}"
    assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert (response.json()["status"], response.json()["code"]) == (401, "unauthenticated")
    assert world.head() == before, f"{endpoint} with {kind} stored events"


# -- the matrix on one SQLite app ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("authorization")
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp / 'l.db'}",
        LEDGER_VAR_DIR=str(tmp / "var"),
        LEDGER_AUTH_SECRET=SECRET,
        _env_file=None,
    )
    app = create_app(settings, clock=FakeClock())
    with TestClient(app) as client:
        yield World.build(Api(client, app), SECRET)


IDENTITY_CELLS = [
    pytest.param(endpoint, who, id=f"{endpoint.name}-{who}")
    for endpoint in ENDPOINTS
    for who in IDENTITIES
]
UNAUTHENTICATED_CELLS = [
    pytest.param(endpoint, kind, id=f"{endpoint.name}-{kind}")
    for endpoint in ENDPOINTS
    for kind in UNAUTHENTICATED
]


@pytest.mark.parametrize(("endpoint", "who"), IDENTITY_CELLS)
def test_each_caller_gets_the_status_of_the_table(world: World, endpoint: Endpoint, who: str):
    check_identity(world, endpoint, who)


@pytest.mark.parametrize(("endpoint", "kind"), UNAUTHENTICATED_CELLS)
def test_no_or_bad_token_is_401_with_a_challenge(world: World, endpoint: Endpoint, kind: str):
    check_unauthenticated(world, endpoint, kind)


def test_the_forged_token_helper_makes_valid_tokens_with_the_right_key(world: World) -> None:
    """The control for the 401 rows: with the real key and sane claims it is accepted."""
    response = world.call(BY_NAME["get_order"], world.shared["paid"], bearer(jwt_for(SECRET)))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        pytest.param("", 401, id="empty_header"),
        pytest.param("Bearer", 401, id="scheme_only"),
        pytest.param("Bearer ", 401, id="scheme_and_space"),
        pytest.param("Basic Y2xpZW50LWE6cHc=", 401, id="basic_scheme"),
        pytest.param("{token}", 401, id="token_without_scheme"),
        pytest.param("Bearer {token}x", 401, id="tampered_signature"),
        pytest.param("Bearer a.b.c", 401, id="three_garbage_parts"),
        pytest.param("bearer {token}", 200, id="scheme_is_case_insensitive"),
        pytest.param("Bearer {token}", 200, id="control"),
    ],
)
def test_authorization_header_shapes(world: World, authorization: str, status: int) -> None:
    token = world.api.app.state.auth.issue(CLIENT)
    headers = {"Authorization": authorization.format(token=token)}
    response = world.call(BY_NAME["get_order"], world.shared["paid"], headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers.get("www-authenticate", "").startswith("Bearer")


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        pytest.param({"exp": None}, 401, id="no_exp"),
        pytest.param({"sub": None}, 401, id="no_sub"),
        pytest.param({"sub": ""}, 401, id="empty_sub"),
        pytest.param({"sub": 42}, 401, id="numeric_sub"),
        pytest.param({"sub": "x" * 256}, 401, id="sub_over_255"),
        pytest.param({"roles": []}, 401, id="no_roles"),
        pytest.param({"roles": "user"}, 401, id="roles_not_a_list"),
        pytest.param({"roles": ["user", 1]}, 401, id="role_not_a_string"),
        pytest.param({"roles": ["clock"]}, 401, id="clock_role"),
        pytest.param({"exp": "tomorrow"}, 401, id="exp_not_a_time"),
        pytest.param({"roles": None}, 200, id="roles_default_to_user"),
        pytest.param({}, 200, id="control"),
    ],
)
def test_token_claims(world: World, claims: dict[str, Any], status: int) -> None:
    response = world.call(
        BY_NAME["get_order"], world.shared["paid"], bearer(jwt_for(SECRET, **claims))
    )
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "algorithm_header",
    [pytest.param("none", id="alg_none"), pytest.param("HS512", id="hs512")],
)
def test_only_hs256_tokens_are_accepted(world: World, algorithm_header: str) -> None:
    now = datetime.now(UTC)
    claims = {"sub": CLIENT, "roles": ["user"], "exp": now + timedelta(hours=1)}
    if algorithm_header == "none":
        token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    else:
        token = jwt.encode(claims, SECRET, algorithm=algorithm_header)
    response = world.call(BY_NAME["get_order"], world.shared["paid"], bearer(token))
    assert response.status_code == 401, response.text


# -- allowed callers, refused by the state ------------------------------------------------------

WRONG_STATE = [
    # endpoint, who, scene in which it is not allowed now
    ("accept", "freelancer", "pending"),
    ("deliver", "freelancer", "pending"),
    ("requirements", "client", "pending"),
    ("complete", "client", "paid"),
    ("request_revision", "client", "paid"),
    ("review", "client", "paid"),
    ("withdraw_cancellation", "client", "paid"),
    ("accept_cancellation", "freelancer", "paid"),
    ("cancel_client_withdrew", "client", "paid"),
    ("cancel_policy_violation", "support", "completed"),
    ("cancel_policy_violation", "admin", "completed"),
    ("open_dispute", "freelancer", "pending"),
    ("resolve_dispute", "support", "paid"),
    ("resolve_dispute", "admin", "paid"),
    ("create_payment", "client", "paid"),
]


@pytest.mark.parametrize(
    ("name", "who", "scene"), [pytest.param(*row, id="-".join(row)) for row in WRONG_STATE]
)
def test_allowed_callers_get_past_authorization_to_a_409(
    world: World, name: str, who: str, scene: str
) -> None:
    endpoint = BY_NAME[name]
    before = world.head()
    response = world.call(endpoint, world.shared[scene], world.api.as_(*IDENTITIES[who]))
    assert response.status_code == 409, response.text
    assert response.json()["code"] in ("invalid_transition", "conflict")
    assert world.head() == before


# -- 404 reveals nothing; If-Match is checked only after access ---------------------------------

NOWHERE = {"id": "00000000-0000-4000-8000-000000000000"}
"""An order that does not exist."""
SCOPED = [e for e in ENDPOINTS if "{order}" in e.path or "{payment}" in e.path]


@pytest.mark.parametrize("endpoint", SCOPED, ids=str)
def test_another_users_order_looks_exactly_like_a_missing_one(
    world: World, endpoint: Endpoint
) -> None:
    headers = world.api.as_(OTHER)
    theirs = world.call(endpoint, world.shared[endpoint.scene], headers)
    missing = world.call(endpoint, NOWHERE, headers)
    assert (theirs.status_code, missing.status_code) == (404, 404), theirs.text

    def anonymous(response: httpx.Response, order: dict[str, Any]) -> str:
        text = response.text
        for value in world.ids(order).values():
            text = text.replace(value, "<id>")
        return text

    assert anonymous(theirs, world.shared[endpoint.scene]) == anonymous(missing, NOWHERE)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        pytest.param("other_user", 404, id="other_user_404"),
        pytest.param("client", 403, id="client_403"),
        pytest.param("auditor", 403, id="auditor_403"),
        pytest.param("admin", 403, id="admin_403"),
        pytest.param("freelancer", 412, id="freelancer_412"),
    ],
)
def test_a_stale_if_match_is_judged_after_who_asks(world: World, who: str, status: int) -> None:
    """A stranger must not learn the version, nor a refused caller that theirs was stale."""
    headers = {**world.api.as_(*IDENTITIES[who]), "If-Match": '"999"'}
    before = world.head()
    response = world.call(BY_NAME["accept"], world.shared["paid"], headers)
    assert response.status_code == status, response.text
    assert world.head() == before


# -- lists never leak --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/orders",
        "/v1/orders?as=client",
        "/v1/orders?as=freelancer",
        "/v1/orders?status=processing",
        "/v1/payments",
        "/v1/payments?status=success",
        "/v1/payments?orderId={order}",
        "/v1/payments?transactionId=tx-0",
    ],
)
def test_a_user_with_no_orders_sees_empty_lists(world: World, path: str) -> None:
    ids = world.ids(world.shared["paid"])
    assert world.items(fill(path, ids), world.api.as_("outsider")) == []


@pytest.mark.parametrize("path", ["/v1/orders", "/v1/orders?as=client", "/v1/payments"])
def test_another_users_lists_hold_only_their_own(world: World, path: str) -> None:
    """``other_user`` may have orders of their own (the matrix places some): only those."""
    mine = {o["id"] for o in world.items("/v1/orders", world.api.as_(OTHER))}
    for order in world.items("/v1/orders", world.api.as_(OTHER)):
        assert OTHER in (order["userId"], order["freelancerId"]), order
    listed = world.items(path, world.api.as_(OTHER))
    order_ids = {item.get("orderId", item["id"]) for item in listed}
    assert order_ids <= mine
    shared = {o["id"] for o in world.shared.values()}
    assert not order_ids & shared


@pytest.mark.parametrize("who", ["client", "freelancer", "support", "auditor", "admin"])
@pytest.mark.parametrize("path", ["/v1/orders", "/v1/payments"])
def test_parties_and_staff_find_the_order_in_their_lists(world: World, path: str, who: str):
    order = world.shared["paid"]
    listed = world.items(path, world.api.as_(*IDENTITIES[who]))
    key = "orderId" if path == "/v1/payments" else "id"
    assert order["id"] in {item[key] for item in listed}


@pytest.mark.parametrize("who", ["support", "auditor", "admin"])
def test_staff_list_everyones_orders_and_filter_by_user(world: World, who: str) -> None:
    headers = world.api.as_(*IDENTITIES[who])
    everyone = world.items("/v1/orders", headers)
    assert {o["userId"] for o in everyone} >= {CLIENT, OTHER}
    clients = world.items(f"/v1/orders?userId={CLIENT}", headers)
    assert clients
    assert {o["userId"] for o in clients} == {CLIENT}


# -- a subset on SQLite and PostgreSQL -----------------------------------------------------------

SUBSET_IDENTITY = [
    ("get_order", "client"),
    ("get_order", "other_user"),
    ("get_order", "auditor"),
    ("get_payment", "other_user"),
    ("get_payment", "support"),
    ("accept", "client"),
    ("accept", "admin"),
    ("accept", "other_user"),
    ("accept", "freelancer"),
    ("cancel_policy_violation", "auditor"),
    ("cancel_policy_violation", "support"),
    ("create_payment", "freelancer"),
    ("create_payment", "client"),
    ("place_order", "auditor"),
    ("list_orders_of_user", "client"),
]
SUBSET_UNAUTHENTICATED = [
    ("get_order", "no_token"),
    ("accept", "another_key"),
    ("place_order", "expired"),
    ("list_payments", "gateway_role"),
]


def test_a_subset_of_the_matrix_on_each_backend(api: Api, settings: Settings) -> None:
    world = World.build(api, signing_key(settings))
    failures = []
    for name, who in SUBSET_IDENTITY:
        try:
            check_identity(world, BY_NAME[name], who)
        except AssertionError as error:
            failures.append(f"{name} as {who}: {error}")
    for name, kind in SUBSET_UNAUTHENTICATED:
        try:
            check_unauthenticated(world, BY_NAME[name], kind)
        except AssertionError as error:
            failures.append(f"{name} with {kind}: {error}")
    assert not failures, "\n".join(failures)
    order = world.shared["paid"]["id"]
    assert order not in {o["id"] for o in world.items("/v1/orders", api.as_(OTHER))}
    assert order in {o["id"] for o in world.items("/v1/orders", api.as_("admin-1", "admin"))}
