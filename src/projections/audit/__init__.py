"""The audit chain: the projection that chains every event (``chain``), and what auditors run
against the raw store: the chain recomputed, a digest checked, the log read (``verify``)."""
