"""A marketplace backend on loopback that receives webhook deliveries, for the tests.

It keeps every request it is sent (headers and the raw body), answers each with the next
status of ``answers`` (200 once they run out, with ``Retry-After`` when given), and can be
stopped and started again on the same port, so "the receiver is down" is a refused
connection, as it would be. ``wait_until`` blocks on a condition until what it asks holds:
nothing sleeps in steps.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    answers: deque[tuple[int, str | None]] = field(default_factory=deque)
    """The statuses (and ``Retry-After``) the next requests are answered with."""
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ledger"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    status, wait = receiver.answers.popleft() if receiver.answers else (200, None)
                    receiver.received.append(Received(dict(self.headers.items()), body))
                    receiver._changed.notify_all()
                self.send_response(status)
                if wait is not None:
                    self.send_header("Retry-After", wait)
                self.send_header("Content-Length", "0")
                self.end_headers()

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Refuse connections from now on (``start`` takes them again, on the same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None

    def wait_until(self, holds: Callable[[list[Received]], bool], timeout: float = 30) -> bool:
        """Whether ``holds(received)`` came true within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: holds(self.received), timeout)

    def event_ids(self) -> list[str]:
        with self._changed:
            return [item.event["id"] for item in self.received]


@contextmanager
def receiving(port: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(port)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
