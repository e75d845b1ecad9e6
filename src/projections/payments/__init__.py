"""Payment records: the ``payments`` table and its queries."""
