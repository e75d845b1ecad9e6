"""Notifications: which events tell whom what (``rules``), the projection that makes them
(``projection``), and each user's own list (``queries``)."""
