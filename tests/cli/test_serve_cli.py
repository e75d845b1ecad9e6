"""``ledger serve --host H --port P`` and ``ledger demo --host H --port P``: in development the
public URL (the payment form, the return URLs, the demo's links) follows the served address,
unless ``LEDGER_PUBLIC_URL`` is set; in production it is never changed.

With the sandbox gateway, ``ledger serve`` refuses a host that is not a loopback address
unless ``LEDGER_SANDBOX_ON_PUBLIC_HOST=true``.

``uvicorn.run`` is replaced, so nothing listens: what is checked is the settings the app is
built with. The real server is driven in ``tests/e2e/test_public_url.py``."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from typing import Any

import pytest

from api.cli import main
from api.cli.common import served_at
from ledger.settings import Settings, load_settings
from tests.cli.conftest import run_cli

SECRET = "x" * 40
KEY = "0123456789abcdef0123"


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000/"),
        ("127.0.0.1", 8080, "http://127.0.0.1:8080/"),
        ("0.0.0.0", 8080, "http://127.0.0.1:8080/"),
        ("::", 9000, "http://127.0.0.1:9000/"),
        ("localhost", 8001, "http://localhost:8001/"),
        ("192.168.1.20", 8002, "http://192.168.1.20:8002/"),
        ("::1", 8003, "http://[::1]:8003/"),
    ],
)
def test_in_development_the_public_url_follows_the_served_address(
    cli_settings: Settings, host: str, port: int, url: str
) -> None:
    served = served_at(cli_settings, host, port)
    assert str(served.public_url) == url
    assert served.database_url == cli_settings.database_url, "nothing else changes"


def test_a_public_url_set_explicitly_is_kept(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_PUBLIC_URL", "https://ledger.example.com")
    settings = load_settings()
    assert str(served_at(settings, "0.0.0.0", 8080).public_url) == "https://ledger.example.com/"
    monkeypatch.setenv("LEDGER_PUBLIC_URL", "http://127.0.0.1:8000")  # even the default's value
    assert str(served_at(load_settings(), "127.0.0.1", 8080).public_url) == "http://127.0.0.1:8000/"


def test_in_production_nothing_changes(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = {
        "LEDGER_ENV": "production",
        "LEDGER_AUTH_SECRET": SECRET,
        "LEDGER_GATEWAY": "youcanpay",
        "YOUCANPAY_PRIVATE_KEY": f"pri_sandbox_{KEY}",
        "YOUCANPAY_PUBLIC_KEY": f"pub_sandbox_{KEY}",
    }
    for name, value in production.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert served_at(settings, "0.0.0.0", 8080) is settings
    assert str(settings.public_url) == "http://127.0.0.1:8000/"


def test_port_0_keeps_the_settings(cli_settings: Settings) -> None:
    """Any free port: which one is known only once bound, so no URL can name it yet."""
    assert served_at(cli_settings, "127.0.0.1", 0) is cli_settings


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """What ``ledger serve`` hands to ``create_app`` and ``uvicorn.run``; nothing listens.
    The heap it sets aside from the collector is given back afterwards."""
    seen: dict[str, Any] = {}

    def create_app(settings: Settings, run_projections: bool = True) -> object:
        seen["settings"] = settings
        return "app"

    def run(app: object, host: str, port: int) -> None:
        seen.update(app=app, host=host, port=port, frozen=gc.get_freeze_count())

    monkeypatch.setattr("api.http.app.create_app", create_app)
    monkeypatch.setattr("uvicorn.run", run)
    yield seen
    gc.unfreeze()


def test_serve_sets_what_it_loaded_aside_from_the_collector_before_serving(
    cli_settings: Settings, served: dict[str, Any]
) -> None:
    """The modules, routes and models loaded at start live as long as the process; full
    collections under load would otherwise walk them again and again (``serve.run``)."""
    gc.unfreeze()
    assert main(["serve"]) == 0
    assert served["frozen"] > 10_000


@pytest.mark.parametrize(
    ("argv", "host", "port", "url"),
    [
        ((), "127.0.0.1", 8000, "http://127.0.0.1:8000/"),
        (("--port", "8080", "--host", "0.0.0.0"), "0.0.0.0", 8080, "http://127.0.0.1:8080/"),
    ],
)
def test_serve_builds_the_app_with_the_url_it_serves_on(
    cli_settings: Settings,
    served: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    host: str,
    port: int,
    url: str,
) -> None:
    monkeypatch.setenv("LEDGER_SANDBOX_ON_PUBLIC_HOST", "true")  # for 0.0.0.0
    assert main(["serve", *argv]) == 0
    assert (served["app"], served["host"], served["port"]) == ("app", host, port)
    assert str(served["settings"].public_url) == url


def test_serve_keeps_an_explicit_public_url(
    cli_settings: Settings, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_PUBLIC_URL", "https://ledger.example.com")
    assert main(["serve", "--port", "8080"]) == 0
    assert str(served["settings"].public_url) == "https://ledger.example.com/"


PUBLIC_HOSTS = ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "2001:db8::1", "example.com", ""]
LOOPBACK_HOSTS = ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"]


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_the_sandbox_is_refused_on_a_public_host(
    cli_settings: Settings, served: dict[str, Any], capsys: pytest.CaptureFixture[str], host: str
) -> None:
    code, out, err = run_cli(capsys, "serve", "--host", host, "--port", "8000")
    assert (code, out) == (2, "")
    assert served == {}, "nothing is built, nothing listens"
    message = " ".join(err.split())
    assert "refusing to serve the sandbox gateway" in message
    assert "anyone who can reach the sandbox's payment form can mark orders paid" in message
    assert "LEDGER_SANDBOX_ON_PUBLIC_HOST=true" in message


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20"])
def test_the_sandbox_on_a_public_host_when_asked(
    cli_settings: Settings, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setenv("LEDGER_SANDBOX_ON_PUBLIC_HOST", "true")
    assert main(["serve", "--host", host, "--port", "8000"]) == 0
    assert (served["host"], served["settings"].gateway) == (host, "sandbox")
    monkeypatch.setenv("LEDGER_SANDBOX_ON_PUBLIC_HOST", "false")
    served.clear()
    assert main(["serve", "--host", host, "--port", "8000"]) == 2
    assert served == {}


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_the_sandbox_on_a_loopback_host_is_served(
    cli_settings: Settings, served: dict[str, Any], host: str
) -> None:
    assert main(["serve", "--host", host, "--port", "8000"]) == 0
    assert served["host"] == host


def test_youcanpay_is_served_on_any_host(
    cli_settings: Settings, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_GATEWAY", "youcanpay")
    monkeypatch.setenv("YOUCANPAY_PRIVATE_KEY", f"pri_sandbox_{KEY}")
    monkeypatch.setenv("YOUCANPAY_PUBLIC_KEY", f"pub_sandbox_{KEY}")
    assert main(["serve", "--host", "0.0.0.0", "--port", "8000"]) == 0
    assert served["host"] == "0.0.0.0"


@pytest.mark.parametrize("port", ["70000", "-1", "http", ""])
def test_a_port_that_is_not_one_exits_2(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--port", port])
    assert stopped.value.code == 2
    assert "is not a port number (0 to 65535)" in capsys.readouterr().err


def links(out: str) -> set[str]:
    """The origins of every URL the demo printed."""
    return set(re.findall(r"(https?://[^/\s]+)/", out))


@pytest.mark.parametrize(
    ("argv", "origin"),
    [
        ((), "http://127.0.0.1:8000"),
        (("--host", "0.0.0.0", "--port", "8080"), "http://127.0.0.1:8080"),
    ],
)
def test_the_demo_links_point_where_serve_will_answer(
    cli_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    origin: str,
) -> None:
    code, out, _ = run_cli(capsys, "demo", "--if-empty", *argv)
    assert code == 0
    assert links(out) == {origin}
    assert len(re.findall(rf"{re.escape(origin)}/v1/orders/[0-9a-f-]{{36}}", out)) == 5


def test_the_demo_links_keep_an_explicit_public_url(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_PUBLIC_URL", "https://ledger.example.com")
    code, out, _ = run_cli(capsys, "demo", "--port", "8080")
    assert (code, links(out)) == (0, {"https://ledger.example.com"})
