"""Settings: defaults, the library environment built from them, and refusals that name the
variable at fault. Overrides are given as environment-variable names, as in production."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.values import Package
from ledger.settings import Settings, SettingsError, load_settings

STRONG_SECRET = "k3Jx9vQ2mW7pL4tR8nY1cF6hB0sD5gZa"
PRIVATE_KEY = "pri_sandbox_0123456789abcdef"
PUBLIC_KEY = "pub_sandbox_0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``LEDGER_``/``YOUCANPAY_`` variable of the shell running the tests leaks in."""
    for name in os.environ:
        if name.startswith(("LEDGER_", "YOUCANPAY_")):
            monkeypatch.delenv(name)


def load(**variables: str) -> Settings:
    return load_settings(**variables, _env_file=None)


def test_defaults() -> None:
    settings = load()
    assert settings.database_url == "sqlite:///var/ledger.db"
    assert not settings.is_postgres
    assert settings.sqlite_path == Path("var/ledger.db")
    assert (settings.environment, settings.gateway) == ("development", "sandbox")
    assert (settings.platform_fee_percent, settings.fee_rate_bp) == (20, 2_000)
    assert settings.auto_complete_days == 3
    assert settings.cancellation_answer_hours == 48
    assert settings.payment_expiry_minutes == 30
    assert settings.clearance_days == 14


def test_fee_percent_with_two_decimals_is_exact_in_basis_points() -> None:
    assert load(LEDGER_PLATFORM_FEE_PERCENT="12.25").fee_rate_bp == 1_225
    assert load(LEDGER_PLATFORM_FEE_PERCENT="0").fee_rate_bp == 0
    assert load(LEDGER_PLATFORM_FEE_PERCENT="100").fee_rate_bp == 10_000


def test_eventsourcing_env_for_sqlite(tmp_path: Path) -> None:
    settings = load(LEDGER_DATABASE_URL=f"sqlite:///{tmp_path}/x.db", LEDGER_DB_LOCK_TIMEOUT="7")
    assert settings.eventsourcing_env() == {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": f"{tmp_path}/x.db",
        "SQLITE_LOCK_TIMEOUT": "7",
    }


def test_eventsourcing_env_for_a_relative_sqlite_path() -> None:
    env = load().eventsourcing_env()
    assert (env["SQLITE_DBNAME"], env["SQLITE_LOCK_TIMEOUT"]) == ("var/ledger.db", "5")


def test_eventsourcing_env_for_postgres() -> None:
    settings = load(
        LEDGER_DATABASE_URL="postgresql://user:p%40ss@db.example:6543/ledger",
        LEDGER_DB_POOL_SIZE="7",
        LEDGER_DB_CONNECT_TIMEOUT="9",
        LEDGER_DB_LOCK_TIMEOUT="11",
    )
    assert settings.is_postgres
    assert settings.eventsourcing_env() == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "ledger",
        "POSTGRES_HOST": "db.example",
        "POSTGRES_PORT": "6543",
        "POSTGRES_USER": "user",
        "POSTGRES_PASSWORD": "p@ss",
        "POSTGRES_POOL_SIZE": "7",
        "POSTGRES_MAX_OVERFLOW": "7",
        "POSTGRES_CONNECT_TIMEOUT": "9",
        "POSTGRES_LOCK_TIMEOUT": "11",
    }


def test_postgres_defaults_to_port_5432_and_user_postgres() -> None:
    env = load(LEDGER_DATABASE_URL="postgres://db.example/ledger").eventsourcing_env()
    assert (env["POSTGRES_PORT"], env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == (
        "5432",
        "postgres",
        "",
    )


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"LEDGER_DATABASE_URL": "mysql://x"}, "LEDGER_DATABASE_URL"),
        ({"LEDGER_DATABASE_URL": "sqlite://"}, "LEDGER_DATABASE_URL"),
        ({"LEDGER_DATABASE_URL": "postgresql://db.example"}, "LEDGER_DATABASE_URL"),
        ({"LEDGER_PLATFORM_FEE_PERCENT": "120"}, "LEDGER_PLATFORM_FEE_PERCENT"),
        ({"LEDGER_PLATFORM_FEE_PERCENT": "-1"}, "LEDGER_PLATFORM_FEE_PERCENT"),
        ({"LEDGER_PLATFORM_FEE_PERCENT": "12.345"}, "LEDGER_PLATFORM_FEE_PERCENT"),
        ({"LEDGER_PLATFORM_FEE_PERCENT": "abc"}, "LEDGER_PLATFORM_FEE_PERCENT"),
        ({"LEDGER_AUTO_COMPLETE_DAYS": "0"}, "LEDGER_AUTO_COMPLETE_DAYS"),
        ({"LEDGER_CANCELLATION_ANSWER_HOURS": "0"}, "LEDGER_CANCELLATION_ANSWER_HOURS"),
        ({"LEDGER_PAYMENT_EXPIRY_MINUTES": "0"}, "LEDGER_PAYMENT_EXPIRY_MINUTES"),
        ({"LEDGER_CASHPLUS_EXPIRY_HOURS": "0"}, "LEDGER_CASHPLUS_EXPIRY_HOURS"),
        ({"LEDGER_CASHPLUS_EXPIRY_HOURS": "721"}, "LEDGER_CASHPLUS_EXPIRY_HOURS"),
        ({"LEDGER_PAYMENT_METHODS": "paypal"}, "LEDGER_PAYMENT_METHODS"),
        ({"LEDGER_PAYMENT_METHODS": "credit_card,wallet"}, "LEDGER_PAYMENT_METHODS"),
        ({"LEDGER_PAYMENT_METHODS": " , "}, "LEDGER_PAYMENT_METHODS"),
        ({"LEDGER_CLEARANCE_DAYS": "-1"}, "LEDGER_CLEARANCE_DAYS"),
        ({"LEDGER_DB_POOL_SIZE": "0"}, "LEDGER_DB_POOL_SIZE"),
        ({"LEDGER_GATEWAY": "stripe"}, "LEDGER_GATEWAY"),
        ({"LEDGER_ENV": "staging"}, "LEDGER_ENV"),
        ({"LEDGER_AUTH_SECRET": "short"}, "LEDGER_AUTH_SECRET"),
        ({"LEDGER_AUTH_SECRET": "changeme"}, "LEDGER_AUTH_SECRET"),
        ({"LEDGER_ENV": "production"}, "LEDGER_AUTH_SECRET"),
        ({"LEDGER_GATEWAY": "youcanpay"}, "YOUCANPAY_PRIVATE_KEY"),
        (
            {"LEDGER_GATEWAY": "youcanpay", "YOUCANPAY_PRIVATE_KEY": PRIVATE_KEY},
            "YOUCANPAY_PUBLIC_KEY",
        ),
        ({"LEDGER_PUBLIC_URL": "not-a-url"}, "LEDGER_PUBLIC_URL"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(variables: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load(**variables)


def test_a_refusal_names_every_bad_variable_and_not_the_good_ones() -> None:
    with pytest.raises(SettingsError) as refused:
        load(LEDGER_AUTO_COMPLETE_DAYS="0", LEDGER_GATEWAY="stripe", LEDGER_CLEARANCE_DAYS="2")
    message = str(refused.value)
    assert "LEDGER_AUTO_COMPLETE_DAYS" in message
    assert "LEDGER_GATEWAY" in message
    assert "LEDGER_CLEARANCE_DAYS" not in message


def test_complete_production_and_youcanpay_settings_are_accepted() -> None:
    settings = load(
        LEDGER_ENV="production",
        LEDGER_AUTH_SECRET=STRONG_SECRET,
        LEDGER_GATEWAY="youcanpay",
        YOUCANPAY_PRIVATE_KEY=PRIVATE_KEY,
        YOUCANPAY_PUBLIC_KEY=PUBLIC_KEY,
        LEDGER_PUBLIC_URL="https://ledger.example/",
    )
    assert (settings.environment, settings.gateway) == ("production", "youcanpay")
    assert STRONG_SECRET not in repr(settings)  # secrets never show in logs


def test_values_from_the_process_environment_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", "postgresql://u@db.example/ledger")
    monkeypatch.setenv("LEDGER_PLATFORM_FEE_PERCENT", "12.5")
    monkeypatch.setenv("LEDGER_AUTO_COMPLETE_DAYS", "5")
    settings = load()
    assert (settings.is_postgres, settings.fee_rate_bp, settings.auto_complete_days) == (
        True,
        1_250,
        5,
    )
    assert load(LEDGER_AUTO_COMPLETE_DAYS="9").auto_complete_days == 9  # overrides win


def test_bad_values_from_the_process_environment_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGER_CLEARANCE_DAYS", "forever")
    with pytest.raises(SettingsError, match="LEDGER_CLEARANCE_DAYS"):
        load()


def test_the_ledger_ignores_stray_eventsourcing_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A shell's ``PERSISTENCE_MODULE`` (or ``POSTGRES_HOST``) must not redirect the writes."""
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    monkeypatch.setenv("POSTGRES_HOST", "elsewhere.invalid")
    monkeypatch.setenv("SQLITE_DBNAME", str(tmp_path / "stray.db"))
    settings = load(LEDGER_DATABASE_URL=f"sqlite:///{tmp_path}/ledger.db")
    app = build_ledger(settings)
    try:
        gig = app.create_gig(Caller("f-1"), "Logo", [Package("basic", 5_000, 2, 0, "A logo")])
    finally:
        app.close()
    assert not (tmp_path / "stray.db").exists()
    with closing(sqlite3.connect(settings.sqlite_path)) as db:
        stored = db.execute("SELECT originator_id FROM stored_events").fetchall()
    assert [row[0] for row in stored] == [gig.aggregate.id.hex]


def test_production_refuses_the_sandbox_gateway() -> None:
    """Its payment form needs no token: anyone could mark an order paid."""
    with pytest.raises(SettingsError, match="LEDGER_GATEWAY"):
        load_settings(
            LEDGER_ENV="production",
            LEDGER_AUTH_SECRET="x" * 40,
            LEDGER_GATEWAY="sandbox",
            _env_file=None,
        )


def test_a_local_secret_is_made_once_and_an_empty_one_is_refused(tmp_path: Path) -> None:
    settings = load_settings(LEDGER_VAR_DIR=str(tmp_path), _env_file=None)
    first = settings.local_secret("key")
    assert len(first) >= 32 and settings.local_secret("key") == first
    assert oct((tmp_path / "key").stat().st_mode & 0o777) == "0o600"
    (tmp_path / "empty").write_text("")
    with pytest.raises(SettingsError, match="empty"):
        settings.local_secret("empty")


# -- issue 18: bounded tokens, YouCanPay keys that look like keys, private files ------------


def test_the_longest_token_lifetime_is_a_setting() -> None:
    assert load().auth_max_token_hours == 24
    assert load(LEDGER_AUTH_MAX_TOKEN_HOURS="2").auth_max_token_hours == 2
    for bad in ("0", "-1", "1.5", "forever", str(367 * 24)):
        with pytest.raises(SettingsError, match="LEDGER_AUTH_MAX_TOKEN_HOURS"):
            load(LEDGER_AUTH_MAX_TOKEN_HOURS=bad)


YOUCANPAY = {"LEDGER_GATEWAY": "youcanpay"}


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        (
            {**YOUCANPAY, "YOUCANPAY_PRIVATE_KEY": "a", "YOUCANPAY_PUBLIC_KEY": PUBLIC_KEY},
            "PRIVATE",
        ),
        (
            {**YOUCANPAY, "YOUCANPAY_PRIVATE_KEY": PRIVATE_KEY, "YOUCANPAY_PUBLIC_KEY": "b"},
            "PUBLIC",
        ),
        (  # the keys swapped
            {**YOUCANPAY, "YOUCANPAY_PRIVATE_KEY": PUBLIC_KEY, "YOUCANPAY_PUBLIC_KEY": PRIVATE_KEY},
            "PRIVATE",
        ),
        (  # too short after the prefix
            {
                **YOUCANPAY,
                "YOUCANPAY_PRIVATE_KEY": "pri_sandbox_x",
                "YOUCANPAY_PUBLIC_KEY": PUBLIC_KEY,
            },
            "PRIVATE",
        ),
        (  # a character no key has
            {
                **YOUCANPAY,
                "YOUCANPAY_PRIVATE_KEY": "pri_sandbox_0123456789abcdef ",
                "YOUCANPAY_PUBLIC_KEY": PUBLIC_KEY,
            },
            "PRIVATE",
        ),
        (  # live keys with the sandbox on
            {
                **YOUCANPAY,
                "YOUCANPAY_PRIVATE_KEY": "pri_0123456789abcdef",
                "YOUCANPAY_PUBLIC_KEY": "pub_0123456789abcdef",
            },
            "PRIVATE",
        ),
        (  # sandbox keys with the sandbox off
            {
                **YOUCANPAY,
                "YOUCANPAY_SANDBOX": "false",
                "YOUCANPAY_PRIVATE_KEY": PRIVATE_KEY,
                "YOUCANPAY_PUBLIC_KEY": PUBLIC_KEY,
            },
            "PUBLIC",
        ),
        ({"YOUCANPAY_PRIVATE_KEY": "a"}, "PRIVATE"),  # even with the sandbox gateway
    ],
)
def test_youcanpay_keys_must_look_like_youcanpay_keys(
    variables: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=f"YOUCANPAY_{named}_KEY") as refused:
        load(**variables)
    private = variables.get("YOUCANPAY_PRIVATE_KEY", "")
    assert len(private) < 8 or private not in str(refused.value)  # a key is never quoted


def test_live_and_sandbox_keys_are_accepted_with_their_mode() -> None:
    live = load(
        **YOUCANPAY,
        YOUCANPAY_SANDBOX="false",
        YOUCANPAY_PRIVATE_KEY="pri_Ab3-dE6_gH9jK2mN5pQ8",
        YOUCANPAY_PUBLIC_KEY="pub_Ab3-dE6_gH9jK2mN5pQ8",
    )
    assert not live.youcanpay_sandbox
    sandbox = load(**YOUCANPAY, YOUCANPAY_PRIVATE_KEY=PRIVATE_KEY, YOUCANPAY_PUBLIC_KEY=PUBLIC_KEY)
    assert sandbox.gateway_key == PRIVATE_KEY


def test_the_var_directory_is_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = os.umask(0o022)  # the usual umask, which leaves directories 0755
    try:
        settings = load_settings(LEDGER_VAR_DIR=str(tmp_path / "deep" / "var"), _env_file=None)
        settings.local_secret("key")
    finally:
        os.umask(previous)
    assert oct((tmp_path / "deep" / "var").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "deep" / "var" / "key").stat().st_mode & 0o777) == "0o600"


def test_production_with_only_an_identity_provider_starts() -> None:
    settings = load(
        LEDGER_ENV="production",
        LEDGER_AUTH_ISSUER="https://id.example/realms/market",
        LEDGER_AUTH_AUDIENCE="gig-ledger",
        LEDGER_AUTH_ROLE_MAP="ledger-support=support, ledger-admin=admin",
        LEDGER_GATEWAY="youcanpay",
        YOUCANPAY_PRIVATE_KEY=PRIVATE_KEY,
        YOUCANPAY_PUBLIC_KEY=PUBLIC_KEY,
    )
    assert settings.has_provider and settings.auth_secret is None
    assert settings.role_map == {"ledger-support": "support", "ledger-admin": "admin"}
    assert settings.provider_algorithms == ("RS256", "ES256")


def test_production_with_no_way_to_check_tokens_refuses_to_start_and_says_so() -> None:
    with pytest.raises(SettingsError) as refused:
        load(LEDGER_ENV="production", LEDGER_GATEWAY="youcanpay",
             YOUCANPAY_PRIVATE_KEY=PRIVATE_KEY, YOUCANPAY_PUBLIC_KEY=PUBLIC_KEY)  # fmt: skip
    message = str(refused.value)
    for name in ("LEDGER_AUTH_ISSUER", "LEDGER_AUTH_JWKS_URL", "LEDGER_AUTH_SECRET"):
        assert name in message


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"LEDGER_AUTH_ALGORITHMS": "HS256"}, "LEDGER_AUTH_ALGORITHMS"),
        ({"LEDGER_AUTH_ALGORITHMS": "none"}, "LEDGER_AUTH_ALGORITHMS"),
        ({"LEDGER_AUTH_ALGORITHMS": "RS256,HS512"}, "LEDGER_AUTH_ALGORITHMS"),
        ({"LEDGER_AUTH_ALGORITHMS": ""}, "LEDGER_AUTH_ALGORITHMS"),
        ({"LEDGER_AUTH_ROLE_MAP": "ops=root"}, "LEDGER_AUTH_ROLE_MAP"),
        ({"LEDGER_AUTH_ROLE_MAP": "ops"}, "LEDGER_AUTH_ROLE_MAP"),
        ({"LEDGER_AUTH_ROLE_MAP": "ops=admin,ops=support"}, "LEDGER_AUTH_ROLE_MAP"),
        ({"LEDGER_AUTH_ROLES_CLAIM": "realm_access..roles"}, "LEDGER_AUTH_ROLES_CLAIM"),
        ({"LEDGER_AUTH_SUBJECT_CLAIM": ""}, "LEDGER_AUTH_SUBJECT_CLAIM"),
        ({"LEDGER_AUTH_ISSUER": "id.example"}, "LEDGER_AUTH_ISSUER"),
        ({"LEDGER_AUTH_JWKS_URL": "ftp://id.example/keys"}, "LEDGER_AUTH_JWKS_URL"),
        ({"LEDGER_CONSOLE_CLIENT_ID": "console"}, "LEDGER_AUTH_ISSUER"),
        ({"LEDGER_CONSOLE_CLIENT_SECRET": "s"}, "LEDGER_CONSOLE_CLIENT_ID"),
        (
            {
                "LEDGER_ENV": "production",
                "LEDGER_AUTH_ISSUER": "https://id.example",
                "LEDGER_GATEWAY": "youcanpay",
                "YOUCANPAY_PRIVATE_KEY": PRIVATE_KEY,
                "YOUCANPAY_PUBLIC_KEY": PUBLIC_KEY,
            },
            "LEDGER_AUTH_AUDIENCE must be set",
        ),
        (
            {
                "LEDGER_ENV": "production",
                "LEDGER_AUTH_ISSUER": "http://id.example",
                "LEDGER_GATEWAY": "youcanpay",
                "YOUCANPAY_PRIVATE_KEY": PRIVATE_KEY,
                "YOUCANPAY_PUBLIC_KEY": PUBLIC_KEY,
            },
            "LEDGER_AUTH_ISSUER must be https",
        ),
    ],
)
def test_bad_identity_provider_settings_are_refused(variables: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load(**variables)
