"""Gig Ledger's write side: money, actors, aggregates, the application service.

Nothing in here knows about HTTP, FastAPI or the read models; the edges (``api``) and the read
side (``projections``) depend on this package, never the other way round.
"""
