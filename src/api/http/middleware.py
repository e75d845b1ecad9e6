"""Pure ASGI middleware that every request passes: request ids and limits on raw input.

Pure ASGI rather than ``BaseHTTPMiddleware``: no extra task per request and no buffering of
streamed bodies.
"""

from __future__ import annotations

import re
from uuid import uuid4

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.problems import problem

MAX_BODY = 64 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header, decoded as latin-1 (what HTTP/1.1 carries)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestId:
    """Give each request an id (the client's ``X-Request-Id`` if it is sane), keep it in
    ``request.state.request_id``, echo it in the answer, and let events record it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class PayloadTooLarge(HTTPException):
    """Raised while reading a body past the limit. An ``HTTPException`` so that FastAPI's
    body parsing lets it through untouched and the problem handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body must not exceed {limit} bytes")


class InputLimits:
    """Refuse bodies over ``limit`` bytes: at once when ``Content-Length`` says so, else as
    soon as the streamed body passes it (chunked uploads have no length). Also refuse a NUL
    character in the query string: no parameter needs one, and PostgreSQL cannot compare
    text with one."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").lower()
        if b"%00" in query or b"\x00" in query:
            await problem(400, "query parameters must not contain NUL characters")(
                scope, receive, send
            )
            return
        declared = header(scope, b"content-length")
        if declared is not None and not declared.isdigit():
            await problem(400, "Content-Length must be a whole number")(scope, receive, send)
            return
        if declared is not None and int(declared) > self.limit:
            await problem(413, PayloadTooLarge(self.limit).detail)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise PayloadTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except PayloadTooLarge as error:
            if started:
                raise
            await problem(413, error.detail)(scope, receive, send)
