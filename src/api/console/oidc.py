"""Signing staff in through the identity provider: OpenID Connect's authorization code flow.

``GET /console/sign-in/provider`` begins: a row in ``console_logins`` (``sessions``) holds a
fresh ``state``, ``nonce`` and PKCE verifier, bound to this browser by a ``SameSite=Lax``
cookie (the provider's redirect back is a top-level navigation from another site, which a
``Strict`` cookie would miss), and the browser goes to the provider's authorization endpoint
with the S256 challenge (Authlib's client builds the URL and makes the exchange).

``GET /console/callback`` ends it: the ``state`` must be the one this browser's row holds
(a return started elsewhere signs nobody in), the row is used up, the code is exchanged with
the verifier, and then two tokens are checked with the provider's published keys:

- the ID token, for this console (``aud`` is the client id), from the issuer, with the
  row's ``nonce``: it says who signed in;
- the access token, exactly as the API checks a bearer token (``LEDGER_AUTH_AUDIENCE``,
  the roles claim and the role map): it says what they may do, so the console grants a
  person no more than the API would. Both must name the same subject.

The person's strongest staff role (admin, then support, then auditor) becomes the role of
an ordinary console session (``ConsoleSessions.start``); someone with none is shown 403 and
no session is made. The answer is the same page a one-time link answers (``signin``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any, Final

import httpx
import jwt
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.routing import PREFIX, ConsoleRoute, error_page, sessions, signed_in
from api.console.sessions import LOGIN_LIFE, SignInRefused
from api.http.auth import Authenticator
from api.http.identity import IdentityProvider, ProviderUnavailable, UnknownKey
from api.http.problems import ApiError
from ledger.settings import Settings

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

LOGIN_COOKIE: Final = "ledger_console_login"
ROLE_ORDER: Final = ("admin", "support", "auditor")
"""A person with several staff roles signs in with the first they hold."""
EXCHANGE_TIMEOUT: Final = 10.0
"""Seconds the code exchange may take."""
SCOPE: Final = "openid profile"
MAX_PARAMETER = 4096


@dataclass(frozen=True)
class ProviderSignIn:
    """The console as a client of the provider (``LEDGER_CONSOLE_CLIENT_ID``)."""

    provider: IdentityProvider
    client_id: str
    client_secret: str | None
    redirect_uri: str

    @classmethod
    def for_settings(
        cls, settings: Settings, provider: IdentityProvider | None
    ) -> ProviderSignIn | None:
        """The configured client, or ``None`` when staff sign in by link only."""
        if provider is None or settings.console_client_id is None:
            return None
        secret = settings.console_client_secret
        return cls(
            provider,
            settings.console_client_id,
            None if secret is None else secret.get_secret_value(),
            f"{str(settings.public_url).rstrip('/')}{PREFIX}/callback",
        )

    def client(self) -> AsyncOAuth2Client:
        """A public client (PKCE alone) without a secret, a confidential one with it."""
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,
            token_endpoint_auth_method="client_secret_basic" if self.client_secret else "none",
            scope=SCOPE,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=EXCHANGE_TIMEOUT,
        )


def provider_sign_in(request: Request) -> ProviderSignIn | None:
    found: ProviderSignIn | None = request.app.state.console_sign_in
    return found


def _configured(request: Request) -> ProviderSignIn:
    found = provider_sign_in(request)
    if found is None:
        raise ApiError(404, "This installation does not sign staff in through a provider.")
    return found


def _unavailable() -> ApiError:
    return ApiError(503, "The identity provider cannot be reached; try again in a moment.")


@router.get("/sign-in/provider")
async def begin(request: Request) -> Response:
    """Off to the provider, with this browser's ``state``, ``nonce`` and PKCE challenge."""
    sign_in = _configured(request)
    try:
        endpoints = await sign_in.provider.endpoints()
    except ProviderUnavailable:
        raise _unavailable() from None
    if endpoints.authorization_endpoint is None or endpoints.token_endpoint is None:
        raise ApiError(503, "The identity provider's discovery document names no sign-in.")
    token, login = await run_in_threadpool(sessions(request).begin_login)
    extra = {} if sign_in.provider.audience is None else {"audience": sign_in.provider.audience}
    async with sign_in.client() as client:
        url, _ = client.create_authorization_url(
            endpoints.authorization_endpoint,
            state=login.state,
            code_verifier=login.verifier,
            nonce=login.nonce,
            **extra,  # Auth0 issues an access token for the API only when asked for it
        )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=int(LOGIN_LIFE.total_seconds()),
        path=f"{PREFIX}/callback",
        httponly=True,
        samesite="lax",
        secure=sessions(request).secure_cookie,
    )
    return response


@router.get("/callback", response_class=HTMLResponse)
async def callback(
    request: Request,
    state: Annotated[str, Query(max_length=MAX_PARAMETER)] = "",
    code: Annotated[str, Query(max_length=MAX_PARAMETER)] = "",
    error: Annotated[str, Query(max_length=MAX_PARAMETER)] = "",
) -> Response:
    """The provider's return: a session for the staff member it vouches for."""
    sign_in = _configured(request)
    cookie = request.cookies.get(LOGIN_COOKIE)
    try:
        login = await run_in_threadpool(sessions(request).take_login, cookie, state)
    except SignInRefused as refused:
        return _refused(request, 403, str(refused))
    if error or not code:
        return _refused(request, 401, f"The provider did not sign you in ({error or 'no code'}).")
    try:
        endpoints = await sign_in.provider.endpoints()
        assert endpoints.token_endpoint is not None  # ``begin`` went on only with one
        async with sign_in.client() as client:
            tokens = await client.fetch_token(
                endpoints.token_endpoint, code=code, code_verifier=login.verifier
            )
    except (ProviderUnavailable, httpx.HTTPError, ValueError):  # ValueError: not JSON
        raise _unavailable() from None
    except OAuthError as refused:
        return _refused(request, 401, f"The provider refused the sign-in ({refused.error}).")
    subject = await _identity(sign_in, tokens, login.nonce)
    auth: Authenticator = request.app.state.auth
    try:
        caller = await auth.caller(f"Bearer {tokens.get('access_token', '')}")
    except ApiError as refused:
        if refused.status != 401:
            raise
        return _refused(request, 401, f"The provider's access token is refused: {refused}.")
    if caller.id != subject:
        return _refused(request, 401, "The ID token and the access token name different people.")
    role = next((role for role in ROLE_ORDER if caller.has(role)), None)
    if role is None:
        return _refused(request, 403, "Your account holds no staff role for this console.")
    token, session = await run_in_threadpool(sessions(request).start, caller.id, role)
    response = signed_in(request, token, session)
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/callback")
    return response


async def _identity(sign_in: ProviderSignIn, tokens: dict[str, Any], nonce: str) -> str:
    """The subject of the exchange's ID token, once it is for this console and this
    sign-in.

    Raises: ApiError 401 (the token) or 503 (the provider's keys).
    """
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise ApiError(401, "The provider sent no ID token: is the openid scope allowed?")
    provider = sign_in.provider
    try:
        claims = await provider.claims(
            id_token, jwt.get_unverified_header(id_token), sign_in.client_id
        )
    except ProviderUnavailable:
        raise _unavailable() from None
    except (jwt.PyJWTError, UnknownKey):
        raise ApiError(401, "The provider's ID token is not valid for this console.") from None
    if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
        raise ApiError(401, "The ID token is not this sign-in's (its nonce differs).")
    authorized, audience = claims.get("azp"), claims.get("aud")
    several = isinstance(audience, list) and len(audience) > 1
    if (authorized is not None or several) and authorized != sign_in.client_id:
        raise ApiError(401, "The ID token was issued to another client.")
    subject = provider.subject(claims)
    if not isinstance(subject, str) or not subject:
        raise ApiError(401, "The ID token names nobody.")
    return subject


def _refused(request: Request, status: int, reason: str) -> HTMLResponse:
    response = error_page(request, status, reason)
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/callback")
    return response
