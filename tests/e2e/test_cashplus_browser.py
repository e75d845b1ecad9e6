"""The sandbox CashPlus agency in a real headless Chromium, against a real ``ledger serve``.

A CashPlus payment has no card form: the client gets a code and pays it in cash at an agency,
which the sandbox plays at ``/sandbox/cashplus/{tokenId}``. Only a browser proves that page
works as a tester meets it: that it shows the payment's own code and amount, that its buttons
post under the pages' CSP and come back (303) to the page, which then says how the code ended,
and that the ledger says the same. Playwright waits for responses and text, never for time.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.conftest import Server, bearer, open_gig
from tests.e2e.test_checkout_browser import ARTIFACTS, chromium, free_port, head

WAITING = "Waiting for the client's cash."


@dataclass
class Ledger:
    """A served ledger on SQLite, with a client to read and write it over HTTP."""

    url: str
    http: httpx.Client
    client: dict[str, str]
    gig: str
    database_url: str
    var_dir: Path

    def caught_up(self) -> dict[str, str]:
        """The client's headers, reading only once the read models hold every event so far."""
        return {**self.client, "X-Ledger-Min-Position": str(head(self.database_url, self.var_dir))}


@pytest.fixture
def ledger(serve: Callable[..., Server], tmp_path: Path) -> Iterator[Ledger]:
    chromium()  # skip (or fail on CI) before serving anything
    port = free_port()
    database_url = f"sqlite:///{tmp_path}/var/ledger.db"
    url = f"http://127.0.0.1:{port}"
    server = serve(port, LEDGER_DATABASE_URL=database_url, LEDGER_PUBLIC_URL=url)
    env = {**server.env, "LEDGER_DATABASE_URL": database_url}
    freelancer, client = bearer(tmp_path, env, "fr-cash"), bearer(tmp_path, env, "cl-cash")
    with httpx.Client(base_url=url, timeout=10) as http:
        yield Ledger(url, http, client, open_gig(http, freelancer), database_url, tmp_path / "var")


def open_cash(ledger: Ledger) -> tuple[str, dict[str, Any]]:
    """An order of the gig's package and its CashPlus payment, over HTTP: the order's id and
    the payment, once the order shows it waits for the cash."""
    http, client = ledger.http, ledger.client
    order = http.post(
        "/v1/orders", json={"gigId": ledger.gig, "packageId": "standard"}, headers=client
    )
    assert order.status_code == 201, order.text
    order_id = str(order.json()["id"])
    path = f"/v1/orders/{order_id}/payments"
    payment = http.post(path, json={"paymentMethod": "cashplus"}, headers=client)
    assert payment.status_code == 201, payment.text
    body = dict(payment.json())
    assert body["checkout"]["paymentUrl"] is None
    assert re.fullmatch(r"[0-9]{12}", body["cashplus"]["code"]), body["cashplus"]
    assert body["cashplus"]["instructions"] and body["expiresAt"]
    seen = http.get(f"/v1/orders/{order_id}", headers=ledger.caught_up())
    assert seen.json()["stage"] == "awaiting_cash_payment", seen.text
    return order_id, body


def at_the_agency(
    ledger: Ledger, payment: dict[str, Any], button: str, screenshot: Path | None = None
) -> str:
    """Opens ``payment``'s agency page in Chromium and clicks its ``button`` (``pay`` or
    ``expire``); what the page says (``#state``) once the form has come back to it."""
    agency = f"{ledger.url}/sandbox/cashplus/{payment['checkout']['tokenId']}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            page = browser.new_page()
            page.goto(agency)
            assert page.inner_text("#code") == payment["cashplus"]["code"]
            assert page.inner_text("#amount") == "250.75 MAD"
            assert page.inner_text("#state") == WAITING
            if screenshot is not None:
                page.screenshot(path=screenshot, full_page=True)
            label = "Take 250.75 MAD in cash" if button == "pay" else "Let the code expire"
            with page.expect_response(f"{agency}/{button}") as posted:
                page.get_by_role("button", name=label).click()
            assert posted.value.status == 303
            page.wait_for_url(agency)
            expect(page.locator("#state")).not_to_have_text(WAITING)
            assert page.inner_text("#code") == payment["cashplus"]["code"]
            return page.inner_text("#state")
        finally:
            browser.close()


def test_taking_the_cash_in_the_browser(ledger: Ledger, tmp_path: Path) -> None:
    order, payment = open_cash(ledger)
    shot = tmp_path / "cashplus-agency.png"
    assert at_the_agency(ledger, payment, "pay", screenshot=shot) == "This code is paid."
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "cashplus-agency.png")

    wait = ledger.caught_up()
    paid = ledger.http.get(f"/v1/orders/{order}/payment", headers=wait)
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["failureReason"]) == ("success", None)
    seen = ledger.http.get(f"/v1/orders/{order}", headers=wait).json()
    assert (seen["status"], seen["stage"]) == ("processing", "awaiting_acceptance")


def test_letting_the_code_expire_in_the_browser(ledger: Ledger) -> None:
    order, payment = open_cash(ledger)
    assert at_the_agency(ledger, payment, "expire") == "This code is expired."

    wait = ledger.caught_up()
    failed = ledger.http.get(f"/v1/orders/{order}/payment", headers=wait)
    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["failureReason"]) == ("failed", "expired")
    seen = ledger.http.get(f"/v1/orders/{order}", headers=wait).json()
    assert seen["status"] == "cancelled"
