"""The sandbox checkout in a real headless Chromium, against a real ``ledger serve`` on SQLite.

The client opens the payment over HTTP, then pays in the hosted form like a person would;
the browser must end on the checkout's success (or error) page, and the ledger must say
the same. Playwright only waits for navigations and selectors, never for time.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from ledger.bootstrap import build_ledger
from ledger.settings import load_settings
from tests.e2e.conftest import bearer, open_checkout, open_gig

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CARD = {"expiry": "12/30", "cvv": "123", "cardHolderName": "Amina Alaoui"}


def chromium() -> str:
    """Debian's Chromium; on CI its absence is a failure, elsewhere a reason to skip."""
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the browser tests")
        pytest.skip(reason)
    return str(CHROMIUM)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def head(database_url: str, var_dir: Path) -> int:
    """The event store's last position, read as another process would."""
    settings = load_settings(
        LEDGER_DATABASE_URL=database_url, LEDGER_VAR_DIR=str(var_dir), _env_file=None
    )
    with build_ledger(settings) as ledger:
        return int(ledger.recorder.max_notification_id() or 0)


def fill(page: Page, card_number: str) -> None:
    page.fill("input[name=cardNumber]", card_number)
    for name, value in CARD.items():
        page.fill(f"input[name={name}]", value)


def test_paying_in_the_browser(serve, tmp_path: Path) -> None:
    executable = chromium()
    port = free_port()
    database_url = f"sqlite:///{tmp_path}/var/ledger.db"
    server = serve(
        port, LEDGER_DATABASE_URL=database_url, LEDGER_PUBLIC_URL=f"http://127.0.0.1:{port}"
    )
    assert server.url == f"http://127.0.0.1:{port}"
    env = {**server.env, "LEDGER_DATABASE_URL": database_url}
    freelancer, client = bearer(tmp_path, env, "fr-web"), bearer(tmp_path, env, "cl-web")

    with httpx.Client(base_url=server.url, timeout=10) as http:
        gig = open_gig(http, freelancer)

        def open_payment() -> tuple[str, dict[str, Any]]:
            return open_checkout(http, client, gig)

        paid_order, paid = open_payment()
        declined_order, declined = open_payment()
        assert paid["checkout"]["paymentUrl"].startswith(f"{server.url}/sandbox/payment-form/")

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
            try:
                page = browser.new_page()
                page.goto(paid["checkout"]["paymentUrl"])
                assert page.inner_text("#amount") == "250.75 MAD"
                fill(page, "4242 4242 4242 4242")
                page.screenshot(path=tmp_path / "checkout.png", full_page=True)
                page.click("button[type=submit]")
                page.wait_for_url(f"{server.url}/checkout/{paid['id']}/success")
                assert "Payment received." in page.inner_text("body")

                page.goto(declined["checkout"]["paymentUrl"])
                fill(page, "4000000000000002")
                page.click("button[type=submit]")
                page.wait_for_url(f"{server.url}/checkout/{declined['id']}/error")
                assert "did not go through" in page.inner_text("body")
            finally:
                browser.close()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "checkout.png", ARTIFACTS / "checkout.png")

        wait = {**client, "X-Ledger-Min-Position": str(head(database_url, tmp_path / "var"))}
        expected = [  # order, payment status, order status
            (paid_order, "success", "processing"),
            (declined_order, "failed", "cancelled"),
        ]
        for order, payment_status, order_status in expected:
            payment = http.get(f"/v1/orders/{order}/payment", headers=wait)
            assert payment.status_code == 200, payment.text
            assert payment.json()["status"] == payment_status
            seen = http.get(f"/v1/orders/{order}", headers=wait)
            assert seen.json()["status"] == order_status
