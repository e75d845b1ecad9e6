"""Webhook endpoint commands: admins register, change, rotate and delete them; the
dispatcher (as the clock) disables one that has been failing for days."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID, uuid4

from ledger import access
from ledger.actors import Actor, Caller
from ledger.domain.endpoint import WebhookEndpoint
from ledger.errors import NotFound
from ledger.service.base import Done, LedgerBase, Unchanged

ENDPOINTS = "webhook endpoints"
EndpointAction = Callable[[WebhookEndpoint, Actor, datetime], None]


class EndpointCommands(LedgerBase):
    """The webhook endpoints' write side. The URL's safety (scheme, address) is the edge's
    to check before a command: it depends on the settings and on DNS, not on the ledger."""

    def register_endpoint(
        self,
        caller: Caller,
        url: str,
        events: Sequence[str],
        description: str | None,
        endpoint_id: UUID | None = None,
    ) -> Done[WebhookEndpoint]:
        """Raises: Forbidden (not an admin), ValidationFailed, Conflict (id taken)."""
        actor = access.require_admin(caller, ENDPOINTS)
        new_id = endpoint_id or uuid4()

        def decide() -> list[WebhookEndpoint]:
            return [WebhookEndpoint.register(new_id, url, events, description, actor, self.clock())]

        return self._run(decide, creates=new_id)

    def get_endpoint(self, caller: Caller, endpoint_id: UUID) -> WebhookEndpoint:
        """Raises: Forbidden (not an admin), NotFound (unknown or deleted)."""
        access.require_admin(caller, ENDPOINTS)
        return self._endpoint(endpoint_id)

    def change_endpoint(
        self,
        caller: Caller,
        endpoint_id: UUID,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> Done[WebhookEndpoint]:
        """Raises: Forbidden, NotFound, ValidationFailed."""
        return self._on_endpoint(
            caller,
            endpoint_id,
            lambda e, a, t: e.change(
                a, t, url=url, events=events, description=description, enabled=enabled
            ),
        )

    def rotate_endpoint_secret(self, caller: Caller, endpoint_id: UUID) -> Done[WebhookEndpoint]:
        """Raises: Forbidden, NotFound."""
        return self._on_endpoint(caller, endpoint_id, lambda e, a, t: e.rotate_secret(a, t))

    def delete_endpoint(self, caller: Caller, endpoint_id: UUID) -> Done[WebhookEndpoint]:
        """Raises: Forbidden, NotFound (unknown, or deleted already)."""
        return self._on_endpoint(caller, endpoint_id, lambda e, a, t: e.delete(a, t))

    def disable_failing_endpoint(self, endpoint_id: UUID, reason: str) -> Done[WebhookEndpoint]:
        """Disable an endpoint deliveries have failed to reach for days (the clock acts:
        the dispatcher's schedule ran out). One disabled or deleted already stays so.

        Raises: NotFound.
        """
        clock = Caller.system("clock")

        def decide() -> list[WebhookEndpoint]:
            endpoint = self._load(WebhookEndpoint, endpoint_id)
            before = endpoint.version
            if not endpoint.deleted:
                endpoint.disable(reason, clock.acting_as("clock"), self.clock())
            if endpoint.version == before:
                raise Unchanged(endpoint)
            return [endpoint]

        return self._run(decide)

    def _endpoint(self, endpoint_id: UUID) -> WebhookEndpoint:
        endpoint = self._load(WebhookEndpoint, endpoint_id)
        if endpoint.deleted:
            raise NotFound(f"webhook endpoint {endpoint_id} not found")
        return endpoint

    def _on_endpoint(
        self, caller: Caller, endpoint_id: UUID, act: EndpointAction
    ) -> Done[WebhookEndpoint]:
        actor = access.require_admin(caller, ENDPOINTS)

        def decide() -> list[WebhookEndpoint]:
            endpoint = self._endpoint(endpoint_id)
            before = endpoint.version
            act(endpoint, actor, self.clock())
            if endpoint.version == before:
                raise Unchanged(endpoint)
            return [endpoint]

        return self._run(decide)
