"""The HTTP edge: the FastAPI application (``app.create_app``), its routes, middleware,
authentication, problem answers and ``Idempotency-Key``."""
