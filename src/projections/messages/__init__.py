"""The messages of each order's conversation, as the API shows them."""
