"""Signing staff in to the console: one-time links, sessions and their CSRF tokens.

A sign-in link carries a *ticket*: a JWT (PyJWT, HS256) with the subject, one role, a
``jti`` and a short ``exp``, signed with a key derived from the installation's auth key and
addressed to the console (``aud``). A ticket is therefore never a bearer token (the API
refuses any token with an audience, and the key differs), and a bearer token is never a
ticket. A ticket is good once: redeeming it inserts its ``jti`` into ``console_tickets``,
whose key refuses a second use in every process sharing the database.

With an identity provider, staff sign in through it instead (``api.console.oidc``), which
ends in ``start``; an installation with no local key (a provider and no
``LEDGER_AUTH_SECRET``) takes no sign-in links at all.

A session is a random token in an ``HttpOnly`` cookie; the table ``console_sessions`` keeps
only its SHA-256 (a copy of the table signs nobody in), the subject and role, the session's
CSRF token, and when it was last used: a session unused for ``IDLE`` ends. Signing out
deletes its row, so a copied cookie is worthless afterwards too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

import jwt

from ledger.actors import USER_ROLES, Caller
from ledger.clock import Clock, iso
from projections.db import Database, Txn

IDLE = timedelta(hours=8)
"""A session unused this long is over."""
TOUCH_EVERY = timedelta(minutes=1)
"""A session's last use is written at most this often (not on every page)."""
DEFAULT_TICKET_LIFE = timedelta(minutes=5)
MAX_TICKET_LIFE = timedelta(minutes=60)
TICKET_ROW_MARGIN = timedelta(hours=1)
LOGIN_LIFE = timedelta(minutes=10)
"""How long a sign-in through the provider may take, from the console to its return."""
AUDIENCE = "gig-ledger-console"
STAFF_ROLES = frozenset({"support", "auditor", "admin"})
"""The roles the console is for; a signed-in ``user`` is shown a 403 page."""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS console_tickets (
        jti TEXT PRIMARY KEY, subject TEXT NOT NULL, expires_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS console_sessions (
        token_hash TEXT PRIMARY KEY, subject TEXT NOT NULL, role TEXT NOT NULL,
        csrf TEXT NOT NULL, created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS console_sessions_by_use ON console_sessions (last_seen_at)",
    """CREATE TABLE IF NOT EXISTS console_logins (
        login_hash TEXT PRIMARY KEY, state TEXT NOT NULL, nonce TEXT NOT NULL,
        verifier TEXT NOT NULL, started_at TEXT NOT NULL)""",
)


class SignInRefused(Exception):
    """A sign-in link that is malformed, forged, expired or already used, or a return from
    the provider that is not this browser's (the reason is for the page; every case signs
    nobody in)."""


@dataclass(frozen=True)
class Login:
    """A sign-in through the provider under way: what its return must match."""

    state: str
    nonce: str
    verifier: str
    """PKCE's ``code_verifier``: only its S256 hash went to the provider."""


@dataclass(frozen=True)
class Session:
    """A signed-in staff member."""

    subject: str
    role: str
    csrf: str

    @property
    def caller(self) -> Caller:
        return self.acting(None)

    def acting(self, request_id: str | None) -> Caller:
        """The caller commands see: the staff member, and the request their events name."""
        return Caller(self.subject, frozenset({self.role}), request_id)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def _ticket_key(auth_key: str) -> str:
    return hmac.new(auth_key.encode(), b"console-ticket", hashlib.sha256).hexdigest()


def issue_ticket(
    auth_key: str, subject: str, role: str, now: datetime, life: timedelta = DEFAULT_TICKET_LIFE
) -> str:
    """A one-time sign-in ticket for ``subject`` as ``role``, valid ``life`` from ``now``.

    Raises: ValueError, for a role, subject or life the console does not take.
    """
    if role not in USER_ROLES:
        raise ValueError(f"role must be one of {', '.join(sorted(USER_ROLES))}")
    if not timedelta(0) < life <= MAX_TICKET_LIFE:
        minutes = int(MAX_TICKET_LIFE.total_seconds() // 60)
        raise ValueError(f"a sign-in link is valid for 1 to {minutes} minutes")
    if not subject or len(subject) > 255 or not subject.isprintable():
        raise ValueError("the subject must be 1 to 255 printable characters")
    claims = {
        "sub": subject,
        "role": role,
        "jti": uuid4().hex,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + life).timestamp()),
    }
    return jwt.encode(claims, _ticket_key(auth_key), algorithm="HS256")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSessions:
    """Tickets and sessions in the ledger's own database, with ``clock`` as now."""

    def __init__(
        self, db: Database, auth_key: str | None, clock: Clock, *, secure_cookie: bool = False
    ) -> None:
        """``auth_key``: the local key tickets are signed with (``None``: no tickets).
        ``secure_cookie``: the cookie is sent over https only (a public URL in https)."""
        self._db, self._clock, self.secure_cookie = db, clock, secure_cookie
        self._key = None if auth_key is None else _ticket_key(auth_key)

    @property
    def takes_links(self) -> bool:
        """Whether one-time sign-in links are taken (there is a local key)."""
        return self._key is not None

    def setup(self) -> None:
        with self._db.transaction() as txn:
            txn.lock_schema()
            for statement in SCHEMA:
                txn.execute(statement)

    def redeem(self, ticket: str) -> tuple[str, Session]:
        """Use ``ticket`` once: a new session's cookie token and the session.

        Raises: SignInRefused.
        """
        if self._key is None:
            raise SignInRefused("sign-in links are not taken here: sign in with the provider")
        now = self._clock()
        try:
            claims = jwt.decode(
                ticket,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["sub", "exp", "jti", "aud"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise SignInRefused("this sign-in link is not valid") from None
        subject, role, jti, expires = (claims.get(k) for k in ("sub", "role", "jti", "exp"))
        if not (isinstance(subject, str) and isinstance(jti, str) and role in USER_ROLES):
            raise SignInRefused("this sign-in link is not valid")
        if not isinstance(expires, int) or expires <= now.timestamp():
            raise SignInRefused("this sign-in link has expired: ask for a new one")
        with self._db.transaction() as txn:
            used = txn.execute(
                "INSERT INTO console_tickets (jti, subject, expires_at)"
                " VALUES (:jti, :subject, :expires) ON CONFLICT DO NOTHING",
                {"jti": jti, "subject": subject, "expires": iso(_at(expires, now))},
            )
            if not used:
                raise SignInRefused("this sign-in link has been used already: ask for a new one")
            return self._open(txn, subject, str(role), now)

    def start(self, subject: str, role: str) -> tuple[str, Session]:
        """A new session for ``subject`` as ``role``, whom the identity provider vouched
        for: its cookie token and the session."""
        with self._db.transaction() as txn:
            return self._open(txn, subject, role, self._clock())

    def begin_login(self) -> tuple[str, Login]:
        """A sign-in through the provider: the browser's cookie token for it, and the
        ``state``, ``nonce`` and PKCE verifier its return is checked against."""
        token = secrets.token_urlsafe(32)
        login = Login(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),  # 64 characters: PKCE takes 43 to 128
        )
        self._db.statement(
            "INSERT INTO console_logins (login_hash, state, nonce, verifier, started_at)"
            " VALUES (:hash, :state, :nonce, :verifier, :now)",
            {
                "hash": _digest(token),
                "state": login.state,
                "nonce": login.nonce,
                "verifier": login.verifier,
                "now": iso(self._clock()),
            },
        )
        return token, login

    def take_login(self, token: str | None, state: str) -> Login:
        """The sign-in this browser (its cookie ``token``) began and the provider's return
        (its ``state``) ends, used up.

        Raises: SignInRefused, for no such sign-in (another browser's, used, too old) or
        a ``state`` that is not its own.
        """
        if not token:
            raise SignInRefused("this sign-in was not started in this browser: start again")
        key = {"hash": _digest(token)}
        with self._db.transaction() as txn:
            row = txn.one("SELECT * FROM console_logins WHERE login_hash = :hash", key)
            # Used up by whoever deletes it: of two returns at once, one deletes nothing.
            taken = txn.execute("DELETE FROM console_logins WHERE login_hash = :hash", key)
        if row is None or not taken:
            raise SignInRefused("this sign-in is over or was never started: start again")
        if self._clock() - datetime.fromisoformat(row["started_at"]) > LOGIN_LIFE:
            raise SignInRefused("this sign-in took too long: start again")
        if not hmac.compare_digest(row["state"].encode(), state.encode()):
            raise SignInRefused("this return from the provider is not this sign-in's: start again")
        return Login(row["state"], row["nonce"], row["verifier"])

    @staticmethod
    def _open(txn: Txn, subject: str, role: str, now: datetime) -> tuple[str, Session]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        txn.execute(
            "INSERT INTO console_sessions"
            " (token_hash, subject, role, csrf, created_at, last_seen_at)"
            " VALUES (:hash, :subject, :role, :csrf, :now, :now)",
            {
                "hash": _digest(token),
                "subject": subject,
                "role": role,
                "csrf": csrf,
                "now": iso(now),
            },
        )
        return token, Session(subject, role, csrf)

    # -- sessions ---------------------------------------------------------------------------

    def session(self, token: str | None) -> Session | None:
        """The live session of the cookie ``token``, its last use noted; ``None`` if there
        is none (never was, signed out, or idle for ``IDLE``)."""
        if not token:
            return None
        now = self._clock()
        rows = self._db.read(
            "SELECT * FROM console_sessions WHERE token_hash = :hash", {"hash": _digest(token)}
        )
        if not rows:
            return None
        row = rows[0]
        seen = datetime.fromisoformat(row["last_seen_at"])
        if now - seen >= IDLE:
            self.end(token)
            return None
        if now - seen >= TOUCH_EVERY:
            self._db.statement(
                "UPDATE console_sessions SET last_seen_at = :now WHERE token_hash = :hash",
                {"now": iso(now), "hash": row["token_hash"]},
            )
        return Session(row["subject"], row["role"], row["csrf"])

    def end(self, token: str) -> None:
        """Sign out: the session's row goes, so its cookie signs nobody in again."""
        self._db.statement(
            "DELETE FROM console_sessions WHERE token_hash = :hash", {"hash": _digest(token)}
        )

    def purge(self) -> int:
        """Forget idle sessions, expired tickets (a used ticket is refused by its ``exp``
        once its row is gone) and sign-ins never ended; returns how many sessions."""
        now = self._clock()
        with self._db.transaction() as txn:
            # A used ticket's row outlives its exp by an hour: another process's clock may lag.
            gone = {"cut": iso(now - TICKET_ROW_MARGIN)}
            txn.execute("DELETE FROM console_tickets WHERE expires_at < :cut", gone)
            txn.execute(
                "DELETE FROM console_logins WHERE started_at < :cut",
                {"cut": iso(now - LOGIN_LIFE)},
            )
            return txn.execute(
                "DELETE FROM console_sessions WHERE last_seen_at < :cut", {"cut": iso(now - IDLE)}
            )


def _at(seconds: int, like: datetime) -> datetime:
    return datetime.fromtimestamp(seconds, like.tzinfo)


def csrf_matches(session: Session, sent: str | None) -> bool:
    """Whether a form's CSRF token is the session's (compared in constant time)."""
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), str(sent).encode())
