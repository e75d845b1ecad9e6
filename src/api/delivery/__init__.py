"""Events delivered to the marketplace's webhook endpoints: the signature (``signing``, with
the ``verify`` receivers use), which addresses may be reached (``addresses``), and the
dispatcher that sends what the ``webhooks`` projection decided (``dispatcher``)."""
