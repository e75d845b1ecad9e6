"""The OpenAPI document's own promises, checked against the code that keeps them: every error
code the ledger can raise is listed under the status it is answered with, and a path answers
a method it does not serve with every method it does in ``Allow``."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.http.openapi import CODES
from api.http.problems import status_of
from ledger.errors import LedgerError
from ledger.settings import load_settings


def every_error(kind: type[LedgerError] = LedgerError) -> list[type[LedgerError]]:
    return [kind, *(found for sub in kind.__subclasses__() for found in every_error(sub))]


@pytest.mark.parametrize("kind", every_error()[1:], ids=lambda kind: kind.__name__)
def test_each_ledger_error_is_documented_under_its_status(kind: type[LedgerError]) -> None:
    error = kind.__new__(kind)  # the status is the class's, whatever the detail
    assert kind.code in CODES[status_of(error)], f"{kind.code} under {status_of(error)}"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/orders", "GET, POST"),
        ("PUT", "/v1/me/preferences", "GET, PATCH"),
        ("DELETE", "/v1/gigs/2d67b725-0000-4000-8000-000000000001", "GET, PATCH"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_allow_lists_every_method_of_the_path(
    tmp_path: Path, method: str, path: str, allowed: str
) -> None:
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp_path / 'l.db'}",
        LEDGER_VAR_DIR=str(tmp_path),
        _env_file=None,
    )
    with TestClient(create_app(settings)) as client:
        answer = client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.json()["code"] == "method_not_allowed"


def test_the_document_declares_the_bearer_scheme_and_problem_answers(tmp_path: Path) -> None:
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp_path / 'l.db'}",
        LEDGER_VAR_DIR=str(tmp_path),
        _env_file=None,
    )
    document = create_app(settings).openapi()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    accept = document["paths"]["/v1/orders/{order_id}/accept"]["post"]
    assert accept["security"] == [{"HTTPBearer": []}]
    assert set(accept["responses"]) >= {"200", "401", "403", "404", "409", "412", "422", "503"}
    problem = accept["responses"]["409"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem409"}
    price = document["components"]["schemas"]["PackageIn"]["properties"]["price"]
    assert (price["type"], price["exclusiveMinimum"], price["multipleOf"]) == ("number", 0, 0.01)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert next(iter(metrics)).startswith("text/plain")
