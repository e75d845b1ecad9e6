"""Gig Ledger's edges: the FastAPI application and the ``ledger`` command line."""
