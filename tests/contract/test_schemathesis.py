"""The OpenAPI document against the API itself, by schemathesis (its pytest integration on the
ASGI app): every operation with generated positive and negative data and every check on, and
stateful runs along the document's links (a gig → an order → its payment → the sandbox pays
→ accept → deliver → complete → review), each request made as the party it belongs to.

Seeded (``derandomize``) and bounded, so a run is the same each time and takes about a
minute. Where schemathesis cannot know what the API knows, the test says so narrowly:

- a paging cursor (``startingAfter``) is only valid if it names an item of that very list,
  and ``X-Ledger-Min-Position`` only if the store has reached it: both depend on what is
  stored, which no schema can say, so generated values are not sent (the paging and
  read-your-writes tests cover them);
- schemathesis sends some generated ``If-Match`` values without their quotes (a generated
  ``"0"`` arrives as ``0``, which the API rightly refuses), so it generates none (the
  contract tests send If-Match themselves);
- the sandbox's form takes only its two test cards and no expired month: what a gateway
  refuses is the gateway's business, so schema-valid cards it refuses are expected there.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.config import SchemathesisConfig

from api.http.app import create_app
from ledger.settings import load_settings

FREELANCER, CLIENT, SUPPORT = (
    ("freelancer-1", "user"),
    ("client-1", "user"),
    ("support-1", "support"),
)
AS_FREELANCER = {
    "create_gig", "revise_gig", "archive_gig", "accept", "deliver",
    "cancellation_requests_accept", "cancellation_requests_decline",
}  # fmt: skip
AS_SUPPORT = {
    "sync_payment", "confirm_refund", "resolve_dispute", "accounts", "entries",
    "trial_balance", "events", "verify",
}  # fmt: skip
NOT_GENERATED = {"startingAfter", "x-ledger-min-position", "if-match"}
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def identity(case: Case) -> tuple[str, str]:
    return identity_of(case.operation.definition.raw.get("operationId", ""))


STORE = tempfile.TemporaryDirectory(prefix="ledger-contract-")
APP = create_app(
    load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{Path(STORE.name) / 'ledger.db'}",
        LEDGER_VAR_DIR=str(Path(STORE.name) / "var"),
        _env_file=None,
    )
)
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "all", "deterministic": True},
        "checks": {"enabled": True},
        "phases": {  # the document's own links, walked with valid data (chains break on bad)
            "stateful": {"inference": {"algorithms": []}, "generation": {"mode": "positive"}}
        },
        "operations": [
            {  # the sandbox refuses schema-valid cards that are not its test cards, or expired
                "include-operation-id": "pay",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", 404, 409, 422]}
                },
            }
        ],
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def running() -> Iterator[None]:
    """The app's lifespan (store, projections, timers) around the module's tests."""
    with TestClient(APP):
        yield
    STORE.cleanup()


@schema.auth(refresh_interval=None)  # a token per call: each operation has its party
class Bearer:
    """A token of the party each operation belongs to (``identity``)."""

    def get(self, case: Case, context: Any) -> str:
        sub, role = identity(case)
        return str(APP.state.auth.issue(sub, [role]))

    def set(self, case: Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


KEYS = itertools.count()
"""Generated Idempotency-Keys repeat from call to call, and a key sent again with another
request is rightly 409; each call gets a key of its own instead (test_idempotency covers
the replays)."""
ANSWERED: Counter[tuple[str, int]] = Counter()
"""(operation, status) of every call made, to show which steps the runs reached."""


@schema.hook
def after_call(context: Any, case: Case, response: Any) -> None:
    ANSWERED[case.operation.definition.raw.get("operationId", ""), response.status_code] += 1


@schema.hook
def map_case(context: Any, case: Case) -> Case:
    for part in (case.query, case.headers):
        for name in NOT_GENERATED & set(part or {}):
            del part[name]  # type: ignore[union-attr]
    if case.headers and "idempotency-key" in case.headers:
        case.headers["idempotency-key"] = f"contract-{next(KEYS)}"
    return case


@schema.parametrize()
@SETTINGS
def test_every_operation_answers_as_documented(case: Case) -> None:
    case.call_and_validate()


CHAIN = [
    ("create_gig", "201", "place_order"),
    ("place_order", "201", "create_payment"),
    ("create_payment", "201", "pay"),
    ("pay", "200", "accept"),
    ("accept", "200", "deliver"),
    ("deliver", "200", "complete"),
    ("complete", "200", "review"),
]
FIRST = {
    "create_gig": {
        "title": "Logo design",
        "packages": [
            {"packageId": "basic", "price": 150, "deliveryDays": 3, "revisions": 1,
             "description": "One logo"},
        ],
    },
}  # fmt: skip
BODIES = {"create_payment": {"paymentMethod": "credit_card"}, "deliver": {"message": "Here"},
          "review": {"rating": 5, "comment": "Great"}}  # fmt: skip
"""What each step sends beyond what its link gives (the link's values win)."""


def test_the_documented_links_chain_an_order_from_gig_to_review() -> None:
    """Each step is made from the previous answer by the document's own link (so a link that
    names a wrong field or operation breaks this test), as the party it belongs to, and its
    answer passes every check."""
    document = APP.openapi()
    where = {
        op["operationId"]: (path, method.upper())
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }
    answer = call(where, "create_gig", {}, FIRST["create_gig"])
    for source, status, target in CHAIN:
        path, method = where[source]
        link = document["paths"][path][method.lower()]["responses"][status]["links"][target]
        assert link["operationId"] == target
        parameters = {
            name: pointer(answer, how) for name, how in link.get("parameters", {}).items()
        }
        body = {**BODIES.get(target, {}), **resolved(link.get("requestBody", {}), answer)}
        answer = call(where, target, parameters, body or None)


def call(
    where: dict[str, tuple[str, str]], name: str, parameters: dict[str, Any], body: Any
) -> Any:
    path, method = where[name]
    sub, role = identity_of(name)
    extra: dict[str, Any] = {} if body is None else {"body": body, "media_type": "application/json"}
    case = schema[path][method].Case(
        path_parameters=parameters,
        headers={"Authorization": f"Bearer {APP.state.auth.issue(sub, [role])}"},
        **extra,
    )
    response = case.call_and_validate()
    assert 200 <= response.status_code < 300, f"{name}: {response.status_code} {response.text}"
    return response.json()


def identity_of(name: str) -> tuple[str, str]:
    if name in AS_FREELANCER:
        return FREELANCER
    return SUPPORT if name in AS_SUPPORT else CLIENT


def pointer(answer: Any, expression: str) -> Any:
    """``$response.body#/checkout/tokenId`` read from an answer's JSON."""
    assert expression.startswith("$response.body#/"), expression
    for part in expression.removeprefix("$response.body#/").split("/"):
        answer = answer[int(part)] if isinstance(answer, list) else answer[part]
    return answer


def resolved(body: Any, answer: Any) -> Any:
    if isinstance(body, str) and body.startswith("$response."):
        return pointer(answer, body)
    if isinstance(body, dict):
        return {name: resolved(value, answer) for name, value in body.items()}
    return body


def test_random_walks_along_the_links() -> None:
    """Schemathesis's own stateful runs over the chain's operations: random sequences along
    the links, with generated data, every answer checked."""
    chain = sorted({name for step in CHAIN for name in (step[0], step[2])})
    machine = schema.include(operation_id=chain).as_state_machine()
    machine.run(settings=settings(SETTINGS, max_examples=25, stateful_step_count=8))
    calls = sum(ANSWERED.values())
    print(f"schemathesis: {calls} calls in this module so far, {len(ANSWERED)} (operation, status)")
