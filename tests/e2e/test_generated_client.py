"""A consumer's view: a Python client generated from the running server's ``/openapi.json``
(openapi-python-client, as marketplace teams would make one) publishes a gig, places an order,
pays it through the sandbox checkout, and takes it to completed and reviewed, over real HTTP.

Nothing here is written by hand against the API: every call, body and answer is the
generated code's, typed from the document, so a schema that does not match what the server
does breaks this test (the client refuses answers its models cannot read).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import token

PACKAGE = "gig_ledger_client"


def generate(url: str, folder: Path) -> ModuleType:
    """Fetch the document from the server and generate the client package into ``folder``."""
    document = folder / "openapi.json"
    document.write_bytes(httpx.get(f"{url}/openapi.json", timeout=10).content)
    tools = Path(sys.executable).parent  # openapi-python-client and the ruff it formats with
    subprocess.run(
        [str(tools / "openapi-python-client"), "generate", "--path", str(document),
         "--meta", "none", "--output-path", str(folder / PACKAGE)],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=300,
    )  # fmt: skip
    sys.path.insert(0, str(folder))
    return importlib.import_module(PACKAGE)


@pytest.fixture
def generated(serve: Any, tmp_path: Path) -> Iterator[tuple[Any, ModuleType, dict[str, str]]]:
    server = serve()
    client = generate(server.url, tmp_path)
    tokens = {sub: token(tmp_path, server.env, sub) for sub in ("gen-freelancer", "gen-client")}
    yield server, client, tokens
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def test_a_generated_client_takes_an_order_from_gig_to_review(
    generated: tuple[Any, ModuleType, dict[str, str]],
) -> None:
    server, package, tokens = generated
    api = importlib.import_module(f"{PACKAGE}.api")
    models = importlib.import_module(f"{PACKAGE}.models")
    call = {
        name: importlib.import_module(f"{PACKAGE}.api.{group}.{name}")
        for group, names in {
            "gigs": ["create_gig", "get_gig"],
            "orders": ["place_order", "get_order", "order_history"],
            "payments": ["create_payment"],
            "sandbox_gateway": ["pay"],
            "order_commands": ["accept", "deliver", "complete", "review"],
        }.items()
        for name in names
    }
    assert api is not None

    def as_(sub: str) -> Any:
        return package.AuthenticatedClient(
            base_url=server.url, token=tokens[sub], raise_on_unexpected_status=True
        )

    with (
        as_("gen-freelancer") as freelancer,
        as_("gen-client") as client,
        package.Client(base_url=server.url, raise_on_unexpected_status=True) as anonymous,
    ):
        gig = call["create_gig"].sync(
            client=freelancer,
            body=models.GigIn(
                title="Logo design",
                packages=[
                    models.PackageIn(
                        package_id=models.PackageInPackageid.BASIC,
                        price=150.5,
                        delivery_days=3,
                        revisions=1,
                        description="One logo",
                    )
                ],
            ),
        )
        assert isinstance(gig, models.Gig), gig
        placed = call["place_order"].sync(
            client=client,
            body=models.OrderIn(gig_id=gig.id, package_id=models.OrderInPackageid.BASIC),
        )
        assert isinstance(placed, models.Order), placed
        assert (placed.status, placed.total_amount) == (models.OrderStatus.PENDING, 150.5)
        payment = call["create_payment"].sync(
            placed.id,
            client=client,
            body=models.PaymentIn(payment_method=models.PaymentInPaymentmethod.CREDIT_CARD),
        )
        assert isinstance(payment, models.Payment), payment
        paid = call["pay"].sync(
            payment.checkout.token_id,
            client=anonymous,
            body=models.PayCard(
                card_number="4242 4242 4242 4242",
                expiry="12/99",
                cvv="123",
                card_holder_name="Omar",
            ),
        )
        assert isinstance(paid, models.PayPaidOut) and paid.order_id == placed.id, paid
        for who, command, body in [
            (freelancer, "accept", None),
            (freelancer, "deliver", models.DeliveryIn(message="Here it is")),
            (client, "complete", None),
            (client, "review", models.ReviewIn(rating=5, comment="Great")),
        ]:
            arguments = {} if body is None else {"body": body}
            answer = call[command].sync(placed.id, client=who, **arguments)
            assert isinstance(answer, models.Order), (command, answer)
        assert answer.status == models.OrderStatus.COMPLETED
        history = call["order_history"].sync(placed.id, client=client, x_ledger_min_position=0)
        assert isinstance(history, models.History), history
