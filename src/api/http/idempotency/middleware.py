"""The ASGI side of ``Idempotency-Key``: claim, run once, keep the answer, replay it.

It wraps the whole application rather than each route, so that every POST — present and
future — gets the same guarantee, and the answer it keeps is exactly the bytes the client
got. The store and the token check come from ``app.state`` (set in the lifespan).
"""

from __future__ import annotations

import logging
from contextlib import suppress

from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.auth import Authenticator
from api.http.idempotency.keys import MAX_KEY, IdempotencyStore, Stored, derived_id, request_hash
from api.http.middleware import header
from api.http.problems import STORE_ERRORS, ApiError, problem, store_down
from ledger.actors import Caller
from ledger.receipts import Receipt, keyed

REPLAYED = (b"idempotent-replayed", b"true")
log = logging.getLogger("api.http.idempotency")


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not 0 < len(key) <= MAX_KEY or not key.isprintable():
            detail = f"Idempotency-Key must be 1 to {MAX_KEY} printable characters"
            errors = [{"field": "Idempotency-Key", "message": detail}]
            await problem(422, detail, errors=errors)(scope, receive, send)
            return
        state = scope["app"].state
        caller: Caller | None = scope.get("state", {}).get("caller")  # from ``RateLimits``
        if caller is None:
            auth: Authenticator = state.auth
            request_id = scope.get("state", {}).get("request_id")
            try:
                caller = await auth.caller(header(scope, b"authorization"), request_id)
            except ApiError:  # not authenticated: the route answers it and nothing is kept
                await self.app(scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = caller  # the route need not decode it
        await self._once(scope, receive, send, state.idempotency, caller.id, key)

    async def _once(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        store: IdempotencyStore,
        caller_id: str,
        key: str,
    ) -> None:
        body = await _read_body(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        digest = request_hash(scope["method"], scope["path"], query, body)
        # The id a creating route gives its aggregate (``deps.NewId``): one per request.
        scope.setdefault("state", {})["new_id"] = derived_id(caller_id, key, digest)
        try:
            claim = await store.aclaim(caller_id, key, digest)
        except STORE_ERRORS as error:  # outside FastAPI: its handlers never see this
            request_id = scope.get("state", {}).get("request_id", "-")
            await store_down(scope["path"], request_id, error)(scope, receive, send)
            return
        if claim.conflict:
            detail = (
                "this Idempotency-Key was used with another request and stays bound to that"
                " first request for 24 h; send a new request with a new key"
            )
            await problem(409, detail, code="idempotency_conflict")(scope, receive, send)
            return
        if claim.replay is not None:
            await _send_stored(send, claim.replay)
            return
        if not claim.won:
            detail = "a request with this Idempotency-Key is still running; retry shortly"
            answer = problem(
                409, detail, code="idempotency_in_progress", headers={"Retry-After": "1"}
            )
            await answer(scope, receive, send)
            return
        receipt = Receipt(caller_id, key, digest, recheck=claim.recheck)
        with keyed(receipt):  # the command records its receipt with its events
            stored = await self._run(scope, body, send, store, receipt)
        await _keep(store, caller_id, key, stored)

    async def _run(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        store: IdempotencyStore,
        receipt: Receipt,
    ) -> Stored:
        """Run the request on the body already read, passing the answer on and keeping it.
        An answer rebuilt from an earlier run's receipt is marked replayed, as it is one."""
        status, headers, chunks = 500, [], []
        sent = False

        async def replay_body() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def keep(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (n.decode("latin-1"), v.decode("latin-1")) for n, v in message["headers"]
                ]
                if receipt.replayed:
                    message = {**message, "headers": [*message["headers"], REPLAYED]}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, keep)
        except BaseException:
            with suppress(*STORE_ERRORS):  # the claim then lapses, and a retry rechecks
                await to_thread.run_sync(store.release, receipt.caller_id, receipt.key)
            raise
        return Stored(status, headers, b"".join(chunks))


async def _keep(store: IdempotencyStore, caller_id: str, key: str, stored: Stored) -> None:
    """Keep the answer the client has been sent (a 5xx frees the key instead). It is sent
    already, so a failing database cannot change it: the claim is left to lapse, or to be
    taken over, and the retry then looks for the command's receipt before acting."""
    try:
        if stored.status >= 500:
            await to_thread.run_sync(store.release, caller_id, key)
        else:
            await store.acomplete(caller_id, key, stored)
    except STORE_ERRORS as error:
        log.warning("the answer under an Idempotency-Key was not kept: %s", error)
        with suppress(*STORE_ERRORS):
            await to_thread.run_sync(store.release, caller_id, key)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_stored(send: Send, stored: Stored) -> None:
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in stored.headers]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send(
        {"type": "http.response.start", "status": stored.status, "headers": [*headers, REPLAYED]}
    )
    await send({"type": "http.response.body", "body": stored.body})
