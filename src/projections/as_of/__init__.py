"""The read models as they were at a past moment (``ledger replay --as-of``): the replay
(``replay``), the copy of the log up to the moment (``copy``), and the second process that
applies the heaviest projections beside it (``second``)."""
