"""The bare baseline of ``bench.http``: one FastAPI route saving one event per request.

No auth, no validation, no idempotency, no projections: what FastAPI and the ``eventsourcing``
store allow on this machine, against which the whole stack is compared.
"""

from __future__ import annotations

import os
from uuid import uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from fastapi import FastAPI


class Thing(Aggregate):
    @event("Created")
    def __init__(self, name: str) -> None:
        self.name = name


store = Application[object](
    env={
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": os.environ["BENCH_DATABASE"],
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_POOL_SIZE": "16",
    }
)
app = FastAPI()


@app.post("/orders", status_code=201)
def create() -> dict[str, str]:
    thing = Thing(name=uuid4().hex)
    store.save(thing)
    return {"id": str(thing.id)}
