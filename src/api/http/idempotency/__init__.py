"""``Idempotency-Key`` at the HTTP edge: the table of keys and kept answers (``keys``) and
the ASGI middleware that claims a key, runs the request once and replays its answer
(``middleware``). The write side's half, the receipt recorded with the events, is
``ledger.receipts``."""
