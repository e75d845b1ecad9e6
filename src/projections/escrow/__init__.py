"""The escrow ledger: the posting rules (``rules``), the projection that writes the journal
(``projection``) and what auditors, support and freelancers read of it (``queries``)."""
