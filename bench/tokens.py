"""What checking a bearer token costs (prints figures; not a test).

    .venv/bin/python -m bench.tokens [--calls 5000]

``Authenticator.caller`` per call, in one run, for an HS256 token with the local key and for
RS256 and ES256 tokens of a provider whose keys are held (the loopback provider of the tests,
fetched once before timing): the CPU a request spends on its token, to set against the
CPU per placed order that issue #23 measures.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tests.identity_provider import AUDIENCE, running

from api.http.auth import Authenticator
from api.http.identity import IdentityProvider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    calls = parser.parse_args().calls
    with running() as provider:
        identity = IdentityProvider(issuer=provider.url, jwks_url=None, audience=AUDIENCE)
        local = Authenticator("k" * 48)
        remote = Authenticator(None, provider=identity)
        kinds = {
            "HS256, local key": (local, local.issue("client-1")),
            "RS256, provider": (remote, provider.token("client-1", kid="rsa-1")),
            "ES256, provider": (remote, provider.token("client-1", kid="ec-1")),
        }

        async def measure() -> None:
            for name, (auth, token) in kinds.items():
                header = f"Bearer {token}"
                await auth.caller(header)  # the provider's keys fetched here, not timed
                started, cpu = time.perf_counter(), time.process_time()
                for _ in range(calls):
                    await auth.caller(header)
                wall = (time.perf_counter() - started) / calls * 1e6
                spent = (time.process_time() - cpu) / calls * 1e6
                print(f"{name:<18} {wall:8.1f} µs per call   {spent:8.1f} µs CPU per call")
            await identity.aclose()

        asyncio.run(measure())


if __name__ == "__main__":
    main()
