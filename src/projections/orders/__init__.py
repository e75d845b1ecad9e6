"""Order history: the ``orders`` and ``order_history`` tables and their queries."""
