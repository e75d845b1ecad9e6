"""The gig catalogue: the ``gigs`` table and its queries."""
