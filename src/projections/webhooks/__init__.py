"""Which webhook endpoint is sent which event (the projection), and the queries of endpoints
and deliveries beside it."""
