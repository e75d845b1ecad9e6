"""The one place configuration is read: environment variables (or ``.env``), validated.

Every field is named by the environment variable that sets it, and a bad value is refused at
start-up with a message naming that variable, rather than surfacing later as a mysterious
failure. ``eventsourcing_env`` turns the database settings into the ``eventsourcing``
library's environment, so the library is configured from here and nowhere else.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import limits
from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.domain.payment import PAYMENT_METHODS
from ledger.money import percent_to_basis_points

WEAK_SECRETS = frozenset({"secret", "changeme", "change-me", "changethis", "dev", "test"})
KEY_BODY = r"[A-Za-z0-9_-]{16,200}"
"""What follows a YouCanPay key's prefix (``pri_``, ``pub_``, and ``sandbox_`` for the
sandbox's keys)."""
PRIVATE_DIRECTORY = 0o700
RATE_LIMITS_OFF = frozenset({"0", "off"})
"""What turns a rate limit off (``LEDGER_RATE_LIMIT_COMMANDS=off``)."""
COMMANDS_DEFAULT = "120/minute"
"""``LEDGER_RATE_LIMIT_COMMANDS`` when unset in production."""
FAILED_AUTH_DEFAULT = "300/minute;1000/hour"
"""``LEDGER_RATE_LIMIT_FAILED_AUTH`` when unset in production."""
RATE_LIMIT_REDIS = frozenset({"redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel"})
"""The ``limits`` storages of Redis, whose counts every process shares."""
PROVIDER_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""What ``LEDGER_AUTH_ALGORITHMS`` may name: signatures by a key pair only. ``none`` and the
HMAC algorithms are never among them, so a token can never be checked with a published
public key as its shared secret."""
LEDGER_ROLES = frozenset({"support", "auditor", "admin"})
"""What ``LEDGER_AUTH_ROLE_MAP`` maps a provider's role names to (anyone else is a user)."""


def _env(name: str, **constraints: Any) -> Any:
    return Field(validation_alias=name, **constraints)


class Settings(BaseSettings):
    """Gig Ledger's settings; the README's configuration table lists the same variables."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )
    """An empty variable counts as unset, as ``${NAME:-}`` in docker-compose.yml leaves it."""

    environment: Annotated[Literal["development", "production"], _env("LEDGER_ENV")] = "development"
    database_url: Annotated[str, _env("LEDGER_DATABASE_URL")] = "sqlite:///var/ledger.db"
    db_pool_size: Annotated[int, _env("LEDGER_DB_POOL_SIZE", ge=1, le=200)] = 10
    db_connect_timeout: Annotated[int, _env("LEDGER_DB_CONNECT_TIMEOUT", ge=1, le=300)] = 5
    db_lock_timeout: Annotated[int, _env("LEDGER_DB_LOCK_TIMEOUT", ge=1, le=300)] = 5
    var_dir: Annotated[Path, _env("LEDGER_VAR_DIR")] = Path("var")
    auth_secret: Annotated[SecretStr | None, _env("LEDGER_AUTH_SECRET")] = None
    auth_max_token_hours: Annotated[int, _env("LEDGER_AUTH_MAX_TOKEN_HOURS", ge=1, le=366 * 24)] = (
        24
    )
    auth_issuer: Annotated[str | None, _env("LEDGER_AUTH_ISSUER")] = None
    """The identity provider's issuer, exactly as its tokens' ``iss`` says it; its keys and
    endpoints are found by OpenID discovery unless ``LEDGER_AUTH_JWKS_URL`` names the keys."""
    auth_jwks_url: Annotated[str | None, _env("LEDGER_AUTH_JWKS_URL")] = None
    auth_audience: Annotated[str | None, _env("LEDGER_AUTH_AUDIENCE")] = None
    auth_algorithms: Annotated[str, _env("LEDGER_AUTH_ALGORITHMS")] = "RS256,ES256"
    auth_roles_claim: Annotated[str, _env("LEDGER_AUTH_ROLES_CLAIM")] = "roles"
    auth_subject_claim: Annotated[str, _env("LEDGER_AUTH_SUBJECT_CLAIM")] = "sub"
    auth_role_map: Annotated[str, _env("LEDGER_AUTH_ROLE_MAP")] = ""
    """``provider-role=ledger-role`` pairs joined by ``,`` (``ledger-support=support``)."""
    console_client_id: Annotated[str | None, _env("LEDGER_CONSOLE_CLIENT_ID")] = None
    console_client_secret: Annotated[SecretStr | None, _env("LEDGER_CONSOLE_CLIENT_SECRET")] = None
    webhook_key: Annotated[SecretStr | None, _env("LEDGER_WEBHOOK_KEY")] = None
    """What every webhook endpoint's signing secrets are derived from (``api.delivery``)."""
    gateway: Annotated[Literal["sandbox", "youcanpay"], _env("LEDGER_GATEWAY")] = "sandbox"
    sandbox_on_public_host: Annotated[bool, _env("LEDGER_SANDBOX_ON_PUBLIC_HOST")] = False
    youcanpay_private_key: Annotated[SecretStr | None, _env("YOUCANPAY_PRIVATE_KEY")] = None
    youcanpay_public_key: Annotated[str | None, _env("YOUCANPAY_PUBLIC_KEY")] = None
    youcanpay_sandbox: Annotated[bool, _env("YOUCANPAY_SANDBOX")] = True
    public_url: Annotated[AnyHttpUrl, _env("LEDGER_PUBLIC_URL")] = AnyHttpUrl(
        "http://127.0.0.1:8000"
    )
    platform_fee_percent: Annotated[
        Decimal, _env("LEDGER_PLATFORM_FEE_PERCENT", ge=0, le=100, decimal_places=2)
    ] = Decimal(20)
    auto_complete_days: Annotated[int, _env("LEDGER_AUTO_COMPLETE_DAYS", ge=1, le=365)] = 3
    cancellation_answer_hours: Annotated[
        int, _env("LEDGER_CANCELLATION_ANSWER_HOURS", ge=1, le=365 * 24)
    ] = 48
    payment_expiry_minutes: Annotated[
        int, _env("LEDGER_PAYMENT_EXPIRY_MINUTES", ge=1, le=7 * 24 * 60)
    ] = 30
    cashplus_expiry_hours: Annotated[
        int, _env("LEDGER_CASHPLUS_EXPIRY_HOURS", ge=1, le=30 * 24)
    ] = 72
    payment_methods: Annotated[str | None, _env("LEDGER_PAYMENT_METHODS")] = None
    """The methods offered, among those the gateway takes; unset: all of them."""
    clearance_days: Annotated[int, _env("LEDGER_CLEARANCE_DAYS", ge=0, le=365)] = 14
    group_commit: Annotated[bool, _env("LEDGER_GROUP_COMMIT")] = True
    batch_max_aggregates: Annotated[int, _env("LEDGER_BATCH_MAX_AGGREGATES", ge=1, le=10_000)] = 256
    batch_wait_ms: Annotated[
        Decimal, _env("LEDGER_BATCH_WAIT_MS", ge=0, le=100, decimal_places=3)
    ] = Decimal(0)
    rate_limit_commands: Annotated[str | None, _env("LEDGER_RATE_LIMIT_COMMANDS")] = None
    """Commands (non-GET requests with a valid token) per caller: a ``limits`` string
    (``120/minute``, ``10/second;1000/hour``), or ``0``/``off``. Unset:
    ``COMMANDS_DEFAULT`` in production, off in development (``commands_rate``)."""
    rate_limit_failed_auth: Annotated[str | None, _env("LEDGER_RATE_LIMIT_FAILED_AUTH")] = None
    """Requests refused 401 per client address, past which that address's requests without
    a valid token are answered 429 (``api.http.rate_limits``); or ``0``/``off``. Unset:
    ``FAILED_AUTH_DEFAULT`` in production, off in development (``failed_auth_rate``)."""
    rate_limit_storage: Annotated[str, _env("LEDGER_RATE_LIMIT_STORAGE")] = "memory://"
    """Where the counts live: ``memory://`` (this process) or ``redis://…`` (shared)."""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            if not parts.path.lstrip("/"):
                raise ValueError("a SQLite URL needs a file path, e.g. sqlite:///var/ledger.db")
        elif parts.scheme in ("postgresql", "postgres"):
            if not parts.hostname or not parts.path.lstrip("/"):
                raise ValueError("a PostgreSQL URL needs a host and a database name")
        else:
            raise ValueError("must start with sqlite:/// or postgresql://")
        return url

    @field_validator("rate_limit_commands", "rate_limit_failed_auth")
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.strip().lower() in RATE_LIMITS_OFF:
            return "off"
        try:
            rates = limits.parse_many(value)
        except ValueError:
            rates = []
        if not rates or any(rate.amount < 1 for rate in rates):
            raise ValueError("must be a rate such as 120/minute (several joined by ';'), or 0/off")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _rate_limit_storage(cls, uri: str) -> str:
        scheme = uri.partition("://")[0] if "://" in uri else ""
        if scheme != "memory" and scheme not in RATE_LIMIT_REDIS:
            raise ValueError("must be memory:// or a redis:// URL (redis+cluster://, …)")
        if scheme != "memory" and importlib.util.find_spec("redis") is None:
            raise ValueError("needs the Python package redis: pip install 'limits[redis]'")
        return uri

    @field_validator("auth_secret", "webhook_key")
    @classmethod
    def _strong_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None:
            value = secret.get_secret_value()
            if value.lower() in WEAK_SECRETS or len(value) < 32:
                raise ValueError("must be a random string of at least 32 characters")
        return secret

    @field_validator("auth_issuer", "auth_jwks_url")
    @classmethod
    def _provider_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an https:// URL (http:// is taken in development only)")
        return url

    @field_validator("auth_algorithms")
    @classmethod
    def _provider_algorithms(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names or set(names) - PROVIDER_ALGORITHMS:
            allowed = ", ".join(sorted(PROVIDER_ALGORITHMS))
            raise ValueError(f"must name one or more of {allowed}, joined by ','")
        return ",".join(dict.fromkeys(names))

    @field_validator("payment_methods")
    @classmethod
    def _payment_methods(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names or set(names) - set(PAYMENT_METHODS):
            methods = ", ".join(PAYMENT_METHODS)
            raise ValueError(f"must name one or more of {methods}, joined by ','")
        return ",".join(dict.fromkeys(names))

    @field_validator("auth_roles_claim", "auth_subject_claim")
    @classmethod
    def _claim_path(cls, path: str) -> str:
        if not path or any(not part.strip() for part in path.split(".")):
            raise ValueError("must be a claim name, or names joined by '.' (realm_access.roles)")
        return path

    @field_validator("auth_role_map")
    @classmethod
    def _role_map(cls, value: str) -> str:
        _parse_role_map(value)
        return value

    @model_validator(mode="after")
    def _complete_for_the_chosen_parts(self) -> Settings:
        if self.environment == "production" and not (self.auth_secret or self.has_provider):
            raise ValueError(
                "LEDGER_ENV=production needs a way to check bearer tokens: set "
                "LEDGER_AUTH_ISSUER or LEDGER_AUTH_JWKS_URL (an identity provider), "
                "or LEDGER_AUTH_SECRET (tokens signed with a shared key)"
            )
        if self.environment == "production":
            for name, url in (
                ("LEDGER_AUTH_ISSUER", self.auth_issuer),
                ("LEDGER_AUTH_JWKS_URL", self.auth_jwks_url),
            ):
                if url is not None and urlsplit(url).scheme != "https":
                    raise ValueError(f"{name} must be https when LEDGER_ENV=production")
        if self.environment == "production" and self.has_provider and not self.auth_audience:
            raise ValueError(
                "LEDGER_AUTH_AUDIENCE must be set with an identity provider when "
                "LEDGER_ENV=production: otherwise a token the provider issued to any of its "
                "clients (an ID token too) would be taken"
            )
        if self.console_client_id is not None and self.auth_issuer is None:
            raise ValueError(
                "LEDGER_CONSOLE_CLIENT_ID needs LEDGER_AUTH_ISSUER: the console finds the "
                "provider's sign-in endpoints by OpenID discovery from the issuer"
            )
        if self.console_client_secret is not None and self.console_client_id is None:
            raise ValueError("LEDGER_CONSOLE_CLIENT_SECRET is set without LEDGER_CONSOLE_CLIENT_ID")
        if self.environment == "production" and self.gateway == "sandbox":
            raise ValueError(
                "LEDGER_GATEWAY=sandbox lets anyone mark an order paid; "
                "set LEDGER_GATEWAY=youcanpay when LEDGER_ENV=production"
            )
        if self.gateway == "youcanpay" and not (
            self.youcanpay_private_key and self.youcanpay_public_key
        ):
            raise ValueError(
                "YOUCANPAY_PRIVATE_KEY and YOUCANPAY_PUBLIC_KEY must be set "
                "when LEDGER_GATEWAY=youcanpay"
            )
        secret = self.youcanpay_private_key
        keys = (
            ("YOUCANPAY_PRIVATE_KEY", "pri", None if secret is None else secret.get_secret_value()),
            ("YOUCANPAY_PUBLIC_KEY", "pub", self.youcanpay_public_key),
        )
        problems = [_key_problem(*key, sandbox=self.youcanpay_sandbox) for key in keys]
        if found := [problem for problem in problems if problem]:
            raise ValueError("; ".join(found))
        return self

    @property
    def has_provider(self) -> bool:
        """Whether bearer tokens may come from an identity provider."""
        return self.auth_issuer is not None or self.auth_jwks_url is not None

    @property
    def offered_methods(self) -> tuple[str, ...] | None:
        """``LEDGER_PAYMENT_METHODS`` read, or ``None`` when unset (whatever the gateway takes)."""
        return None if self.payment_methods is None else tuple(self.payment_methods.split(","))

    @property
    def provider_algorithms(self) -> tuple[str, ...]:
        return tuple(self.auth_algorithms.split(","))

    @property
    def role_map(self) -> dict[str, str]:
        """``LEDGER_AUTH_ROLE_MAP`` read: the provider's role name → the ledger's role."""
        return _parse_role_map(self.auth_role_map)

    @property
    def commands_rate(self) -> str:
        """``LEDGER_RATE_LIMIT_COMMANDS``, or when unset: on in production, off in
        development (test tools and suites send hundreds of commands a minute as one caller)."""
        if self.rate_limit_commands is not None:
            return self.rate_limit_commands
        return COMMANDS_DEFAULT if self.environment == "production" else "off"

    @property
    def failed_auth_rate(self) -> str:
        """``LEDGER_RATE_LIMIT_FAILED_AUTH``, or when unset its default: on in production,
        off in development, where test tools (schemathesis, authorization matrices) send
        thousands of deliberately bad tokens from one address."""
        if self.rate_limit_failed_auth is not None:
            return self.rate_limit_failed_auth
        return FAILED_AUTH_DEFAULT if self.environment == "production" else "off"

    @property
    def is_postgres(self) -> bool:
        return not self.database_url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file: ``sqlite:///var/x.db`` is relative, ``sqlite:////abs/x.db`` not."""
        return Path(urlsplit(self.database_url).path[1:])

    @property
    def fee_rate_bp(self) -> int:
        return percent_to_basis_points(self.platform_fee_percent)

    def local_secret(self, name: str) -> str:
        """A random key generated once into ``var/<name>`` (mode 0600, in a ``var/`` made
        0700) and reused by every process on the machine: development keys that need no
        set-up. Written to a
        temporary file and linked into place, so a process never reads a half-written
        key; when two start at once, the first link wins and both use it."""
        path = self.var_dir / name
        if not path.exists():
            private_directory(path.parent)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(48))
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            finally:
                os.unlink(temporary)
        key = path.read_text().strip()
        if not key:
            raise SettingsError(f"{path} is empty: delete it to have a new key generated")
        return key

    @property
    def endpoint_key(self) -> str | None:
        """``LEDGER_WEBHOOK_KEY``, or in development a local one; ``None`` in production
        without one (webhook endpoints cannot be registered then)."""
        if self.webhook_key is not None:
            return self.webhook_key.get_secret_value()
        if self.environment == "production":
            return None
        return self.local_secret("webhook-key")

    @property
    def gateway_key(self) -> str:
        """The key webhooks are signed with: YouCanPay's private key, or for the sandbox
        when none is configured, a local one."""
        if self.youcanpay_private_key is not None:
            return self.youcanpay_private_key.get_secret_value()
        return self.local_secret("sandbox-gateway-key")

    def eventsourcing_env(self) -> dict[str, str]:
        """The ``eventsourcing`` library's environment for the configured database."""
        if not self.is_postgres:
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": str(self.db_lock_timeout),
            }
        parts = urlsplit(self.database_url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")),
            "POSTGRES_HOST": parts.hostname or "",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": str(self.db_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.db_pool_size),
            "POSTGRES_CONNECT_TIMEOUT": str(self.db_connect_timeout),
            "POSTGRES_LOCK_TIMEOUT": str(self.db_lock_timeout),
        }


def _key_problem(name: str, kind: str, value: str | None, *, sandbox: bool) -> str | None:
    """Why ``value`` is not a YouCanPay key of ``kind`` (``pri``/``pub``) for the sandbox
    or live as configured, naming the variable and never quoting the key; ``None`` if it is
    one, or is not set."""
    if value is None:
        return None
    prefix = f"{kind}_sandbox_" if sandbox else f"{kind}_"
    looks_right = re.fullmatch(re.escape(prefix) + KEY_BODY, value) is not None
    if looks_right and (sandbox or not value.startswith(f"{kind}_sandbox_")):
        return None
    if sandbox:
        where, expected = "YOUCANPAY_SANDBOX=true", prefix
    else:
        where, expected = "YOUCANPAY_SANDBOX=false", f"{prefix} (a live key, not {kind}_sandbox_)"
    return (
        f"{name} is not a YouCanPay key for {where}: expected {expected} followed by "
        "16 to 200 letters, digits, '_' or '-'"
    )


def _parse_role_map(value: str) -> dict[str, str]:
    """``a=support, b=admin`` → ``{"a": "support", "b": "admin"}``.

    Raises: ValueError, for a pair that is not ``name=role`` with one of ``LEDGER_ROLES``,
    or a provider role named twice.
    """
    mapping: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in value.split(","))):
        name, equals, role = (part.strip() for part in pair.partition("="))
        if not (name and equals and role in LEDGER_ROLES):
            roles = ", ".join(sorted(LEDGER_ROLES))
            raise ValueError(f"{pair!r} is not provider-role=ledger-role with one of {roles}")
        if name in mapping:
            raise ValueError(f"the provider role {name!r} is mapped twice")
        mapping[name] = role
    return mapping


def private_directory(path: Path) -> None:
    """Make ``path`` (and missing parents) if it is not there; the one made last, ``path``
    itself, readable by this user alone (0700). One that exists is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIRECTORY)
    except FileExistsError:
        return
    os.chmod(path, PRIVATE_DIRECTORY)  # whatever the umask removed, nothing more is allowed


class SettingsError(ValueError):
    """Configuration that cannot be used; the message names each offending variable."""


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning pydantic's report into one line per bad variable.

    ``overrides`` are given by environment-variable name (``LEDGER_DATABASE_URL=…``).

    Raises:
        SettingsError: a variable is missing, malformed or out of range.
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = [_describe(e) for e in error.errors()]
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None


def _describe(error: Any) -> str:
    name = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"  {name}: {message}" if name else f"  {message}"
