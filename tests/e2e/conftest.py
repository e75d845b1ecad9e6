"""A real ``ledger serve`` process, driven over real HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

READY = re.compile(r"Uvicorn running on (http://\S+)")


class Server:
    """``ledger serve --port 0`` in a subprocess; ``url`` once it accepts connections.

    Readiness is read from the server's own log line, never guessed with sleeps. A fixed
    ``port`` is for tests that must know the URL before it starts (``LEDGER_PUBLIC_URL``).
    """

    def __init__(self, env: dict[str, str], cwd: Path, port: int = 0) -> None:
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=cwd,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.url = self._wait_until_ready(timeout=30)

    def _wait_until_ready(self, timeout: float) -> str:
        found: list[str] = []
        done = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                match = READY.search(line)
                if match and not found:
                    found.append(match.group(1))
                    done.set()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        done.wait(timeout)
        if not found:
            self.stop()
            raise RuntimeError("ledger serve did not start:\n" + "".join(self.log))
        return found[0]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    servers: list[Server] = []

    def start(port: int = 0, **variables: str) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "YOUCANPAY_"))}
        env.update(variables)
        server = Server(env, tmp_path, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
