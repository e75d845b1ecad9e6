"""A real OpenID provider on loopback, for the tests: discovery, a JWKS of two key pairs
(one RSA, one EC), an authorization endpoint with a sign-in form, and a token endpoint that
checks PKCE (Authlib's S256) and signs ID and access tokens (PyJWT).

It serves HTTP from a thread (``http.server``), so a test reaches it over real sockets as
the ledger would a provider: the socket is bound before ``start`` returns, so nothing waits
for it to come up. Access tokens look like Keycloak's: the roles sit at
``realm_access.roles``. A test rotates the keys (``rotate``), withdraws one (``withdraw``),
or makes the keys fail (``failing``), and counts how often the JWKS was fetched.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "gig-ledger-api"
CLIENT_ID = "ledger-console"
CLIENT_SECRET = "console-secret-of-the-test-provider"
ROLE_MAP = "ledger-support=support,ledger-auditor=auditor,ledger-admin=admin"
ROLES_CLAIM = "realm_access.roles"


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    def jwk(self, with_alg: bool = True) -> dict[str, Any]:
        codec = (
            jwt.algorithms.RSAAlgorithm
            if self.algorithm.startswith("RS")
            else jwt.algorithms.ECAlgorithm
        )
        entry: dict[str, Any] = codec.to_jwk(self.private.public_key(), as_dict=True)
        entry.update(kid=self.kid, use="sig")
        return {**entry, "alg": self.algorithm} if with_alg else entry


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


@dataclass
class Grant:
    sub: str
    redirect_uri: str
    challenge: str
    nonce: str | None


@dataclass
class Provider:
    """The provider's state; ``url`` is its issuer."""

    url: str = ""
    keys: list[SigningKey] = field(default_factory=lambda: [rsa_key("rsa-1"), ec_key("ec-1")])
    signing: str = "rsa-1"
    users: dict[str, list[str]] = field(default_factory=dict)
    """Who may sign in through the form, and their provider roles."""
    redirect_uris: set[str] = field(default_factory=set)
    failing: bool = False
    with_alg: bool = True
    """Whether the JWKS names each key's ``alg`` (Microsoft Entra's, for one, does not)."""
    odd_entries: list[Any] = field(default_factory=list)
    """Entries the JWKS holds besides the keys (ones no library can use)."""
    id_claims: dict[str, Any] = field(default_factory=dict)
    """What the next ID tokens say otherwise (``None`` removes a claim)."""
    public_client: bool = False
    """Whether the console may exchange a code with no secret (PKCE alone)."""
    jwks_fetches: int = 0
    grants: dict[str, Grant] = field(default_factory=dict)

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def key(self, kid: str) -> SigningKey:
        return next(key for key in self.keys if key.kid == kid)

    def rotate(self) -> SigningKey:
        """A new RSA key, published and signing from now on (the old ones stay published)."""
        new = rsa_key(f"rsa-{len(self.keys) + 1}")
        self.keys.append(new)
        self.signing = new.kid
        return new

    def withdraw(self, kid: str) -> None:
        self.keys = [key for key in self.keys if key.kid != kid]

    def token(
        self,
        sub: str,
        roles: list[str] | None = None,
        *,
        kid: str | None = None,
        lifetime: int = 300,
        **claims: Any,
    ) -> str:
        """An access token for the API, as the provider issues them; ``claims`` override
        (``iss``, ``aud``, ``exp`` …; ``None`` removes one)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "exp": now + lifetime,
            "realm_access": {"roles": roles or []},
            "azp": CLIENT_ID,
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        key = self.key(kid or self.signing)
        return jwt.encode(body, key.private, algorithm=key.algorithm, headers={"kid": key.kid})

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "sub": grant.sub,
            "iat": now,
            "exp": now + 300,
            "azp": CLIENT_ID,
            **({"nonce": grant.nonce} if grant.nonce is not None else {}),
        }
        body.update(self.id_claims)
        body = {name: value for name, value in body.items() if value is not None}
        key = self.key(self.signing)
        return jwt.encode(body, key.private, algorithm=key.algorithm, headers={"kid": key.kid})

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": self.jwks_url,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
        }


class _Handler(BaseHTTPRequestHandler):
    provider: Provider

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures, not every request."""

    def _answer(
        self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._answer(status, json.dumps(body).encode(), "application/json")

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        fields = parse_qs(self.rfile.read(length).decode())
        return {name: values[0] for name, values in fields.items()}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        provider = self.provider
        if parts.path == "/.well-known/openid-configuration":
            self._json(200, provider.discovery())
        elif parts.path == "/jwks":
            provider.jwks_fetches += 1
            if provider.failing:
                self._json(503, {"error": "temporarily_unavailable"})
            else:
                keys = [key.jwk(provider.with_alg) for key in provider.keys]
                self._json(200, {"keys": [*provider.odd_entries, *keys]})
        elif parts.path == "/authorize":
            self._authorize_form(query)
        else:
            self._json(404, {"error": "not_found"})

    def _authorize_form(self, query: dict[str, str]) -> None:
        problem = _authorization_problem(self.provider, query)
        if problem:
            self._answer(400, problem.encode(), "text/plain")
            return
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in query.items()
        )
        page = (
            "<!doctype html><title>Test provider</title><h1>Sign in to the test provider</h1>"
            f'<form method="post" action="/authorize">{hidden}'
            '<label>Username <input name="username" autocomplete="off"></label>'
            "<button>Sign in</button></form>"
        )
        self._answer(200, page.encode(), "text/html; charset=utf-8")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        fields = self._form()
        if path == "/authorize":
            self._authorize(fields)
        elif path == "/token":
            self._token(fields)
        else:
            self._json(404, {"error": "not_found"})

    def _authorize(self, fields: dict[str, str]) -> None:
        provider = self.provider
        problem = _authorization_problem(provider, fields)
        if problem or fields.get("username") not in provider.users:
            self._answer(403, (problem or "no such user").encode(), "text/plain")
            return
        code = secrets.token_urlsafe(16)
        provider.grants[code] = Grant(
            fields["username"],
            fields["redirect_uri"],
            fields["code_challenge"],
            fields.get("nonce"),
        )
        answer = {"code": code, "state": fields.get("state", "")}
        back = f"{fields['redirect_uri']}?{urlencode(answer)}"
        self._answer(303, b"", "text/plain", {"Location": back})

    def _token(self, fields: dict[str, str]) -> None:
        provider = self.provider
        scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
        client = base64.b64decode(credentials).decode() if scheme == "Basic" else ""
        public = provider.public_client and not client and fields.get("client_id") == CLIENT_ID
        if client != f"{CLIENT_ID}:{CLIENT_SECRET}" and not public:
            self._json(401, {"error": "invalid_client"})
            return
        grant = provider.grants.pop(fields.get("code", ""), None)
        if (
            fields.get("grant_type") != "authorization_code"
            or grant is None
            or grant.redirect_uri != fields.get("redirect_uri")
            or create_s256_code_challenge(fields.get("code_verifier", "")) != grant.challenge
        ):
            self._json(400, {"error": "invalid_grant"})
            return
        self._json(
            200,
            {
                "access_token": provider.token(grant.sub, provider.users[grant.sub]),
                "id_token": provider.id_token(grant),
                "token_type": "Bearer",
                "expires_in": 300,
            },
        )


def _authorization_problem(provider: Provider, query: dict[str, str]) -> str | None:
    if query.get("client_id") != CLIENT_ID:
        return "unknown client"
    if query.get("redirect_uri") not in provider.redirect_uris:
        return "redirect_uri not registered"
    if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
        return "only the code flow with the openid scope"
    if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
        return "PKCE with S256 is required"
    return None


@contextmanager
def running(provider: Provider | None = None) -> Iterator[Provider]:
    """``provider`` served on a free loopback port until the block ends."""
    provider = provider or Provider()
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
