"""``ledger token``: never mints a token the API would refuse (issue 18)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import jwt
import pytest

from api.http.auth import Authenticator, signing_key
from ledger.settings import Settings, load_settings
from tests.cli.conftest import run_cli


def claims(settings: Settings, token: str) -> dict[str, object]:
    return dict(jwt.decode(token, signing_key(settings), algorithms=["HS256"]))


@pytest.mark.parametrize("hours", ["1000000", "24.01", "25"])
def test_hours_beyond_the_cap_exit_2_saying_so(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str], hours: str
) -> None:
    code, out, err = run_cli(capsys, "token", "--sub", "ana", "--hours", hours)
    assert (code, out) == (2, "")
    assert "24 hours at most" in err and "LEDGER_AUTH_MAX_TOKEN_HOURS" in err


@pytest.mark.parametrize("hours", ["0", "-1", "nan", "inf"])
def test_hours_that_are_no_duration_exit_2(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str], hours: str
) -> None:
    code, out, err = run_cli(capsys, "token", "--sub", "ana", "--hours", hours)
    assert (code, out) == (2, "")
    assert "--hours" in err


def test_the_cap_itself_is_minted_and_accepted(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "token", "--sub", "ana", "--role", "admin", "--hours", "24")
    assert code == 0
    token = out.strip()
    found = claims(cli_settings, token)
    assert found["exp"] - found["iat"] == 24 * 3600  # type: ignore[operator]
    caller = asyncio.run(Authenticator.for_settings(cli_settings).caller(f"Bearer {token}"))
    assert (caller.id, caller.roles) == ("ana", frozenset({"admin"}))


def test_the_cap_follows_the_setting_and_bounds_the_default(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_AUTH_MAX_TOKEN_HOURS", "2")
    code, _, err = run_cli(capsys, "token", "--sub", "ana", "--hours", "3")
    assert code == 2 and "2 hours at most" in err
    code, out, _ = run_cli(capsys, "token", "--sub", "ana")  # the default 12 h, cut to 2
    assert code == 0
    found = claims(load_settings(), out.strip())
    assert found["exp"] - found["iat"] == 2 * 3600  # type: ignore[operator]
    assert found["iat"] <= datetime.now(UTC).timestamp() + 1  # type: ignore[operator]


@pytest.mark.parametrize("subject", ["ana\u200b", "ana\x1b[31m", "ana\r\n"])
def test_a_subject_with_a_control_or_invisible_character_exits_2(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str], subject: str
) -> None:
    code, out, err = run_cli(capsys, "token", "--sub", subject)
    assert (code, out) == (2, "")
    assert "control or invisible" in err


def test_with_only_a_provider_there_is_no_key_to_mint_with(
    cli_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_AUTH_ISSUER", "https://id.example/realms/market")
    code, _, err = run_cli(capsys, "token", "--sub", "ana")
    assert code == 2 and "LEDGER_AUTH_SECRET" in err
    code, _, err = run_cli(capsys, "console-link", "--sub", "ana", "--role", "support")
    assert code == 2 and "identity provider" in err
    code, out, _ = run_cli(capsys, "demo")  # the data, and where tokens come from instead
    assert code == 0 and "Tokens come from the identity provider" in out
    assert "Bearer" not in out and "ticket=" not in out
    assert not (cli_settings.var_dir / "auth-secret").exists()
