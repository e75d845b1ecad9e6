"""The read models: each a ``Projection`` that owns its tables."""
