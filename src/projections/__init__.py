"""Gig Ledger's read side: the projection runner and the read models built from events.

Depends on ``ledger`` (to decode events), never writes events itself.
"""
