"""A real ``ledger serve`` process, driven over real HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

READY = re.compile(r"Uvicorn running on (http://\S+)")
PACKAGE = {
    "packageId": "standard",
    "price": 250.75,
    "deliveryDays": 5,
    "revisions": 1,
    "description": "A logo and a card",
}


def ledger(cwd: Path, env: dict[str, str], *args: str) -> str:
    """What ``ledger ARGS…`` prints, run as its own process; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def token(cwd: Path, env: dict[str, str], sub: str, role: str = "user") -> str:
    return ledger(cwd, env, "token", "--sub", sub, "--role", role)


def bearer(cwd: Path, env: dict[str, str], sub: str, role: str = "user") -> dict[str, str]:
    """The ``Authorization`` header of a token minted by ``ledger token --sub --role``."""
    return {"Authorization": f"Bearer {token(cwd, env, sub, role)}"}


def open_gig(http: httpx.Client, freelancer: dict[str, str]) -> str:
    """A gig with the one ``PACKAGE``, published over HTTP; its id."""
    gig = http.post("/v1/gigs", json={"title": "Logo", "packages": [PACKAGE]}, headers=freelancer)
    assert gig.status_code == 201, gig.text
    return str(gig.json()["id"])


def open_checkout(
    http: httpx.Client, client: dict[str, str], gig: str
) -> tuple[str, dict[str, Any]]:
    """An order of ``gig``'s package and its card payment, over HTTP: the order's id and
    the payment (with its checkout)."""
    order = http.post("/v1/orders", json={"gigId": gig, "packageId": "standard"}, headers=client)
    assert order.status_code == 201, order.text
    path = f"/v1/orders/{order.json()['id']}/payments"
    payment = http.post(path, json={"paymentMethod": "credit_card"}, headers=client)
    assert payment.status_code == 201, payment.text
    return str(order.json()["id"]), dict(payment.json())


class Server:
    """``ledger serve --port 0`` in a subprocess; ``url`` once it accepts connections.

    Readiness is read from the server's own log line, never guessed with sleeps. A fixed
    ``port`` is for tests that must know the URL before it starts (``LEDGER_PUBLIC_URL``).
    """

    def __init__(self, env: dict[str, str], cwd: Path, port: int = 0) -> None:
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=cwd,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.url = self._wait_until_ready(timeout=30)

    def _wait_until_ready(self, timeout: float) -> str:
        found: list[str] = []
        done = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                match = READY.search(line)
                if match and not found:
                    found.append(match.group(1))
                    done.set()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        done.wait(timeout)
        if not found:
            self.stop()
            raise RuntimeError("ledger serve did not start:\n" + "".join(self.log))
        return found[0]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    servers: list[Server] = []

    def start(port: int = 0, **variables: str) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "YOUCANPAY_"))}
        env.update(variables)
        server = Server(env, tmp_path, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
