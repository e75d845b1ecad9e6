"""The aggregates of the ledger: gigs, orders and payments, and their small value types."""
