"""``Ledger-Signature``: how a delivery is signed, and ``verify``, for receivers.

The header is ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``, with one ``v1``
per secret that signs: two during the 24 hours after a rotation, so a receiver may switch to
the new secret at any moment of them. The timestamp is signed with the body, so a captured
delivery cannot be replayed later than the receiver's tolerance (300 s by default).

An endpoint's secrets are not stored anywhere: each is an HMAC of the installation's webhook
key (``LEDGER_WEBHOOK_KEY``), the endpoint's id and the secret's generation, which the
endpoint's events record. Rotating the webhook key therefore changes every endpoint's secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from uuid import UUID

HEADER = "Ledger-Signature"
TOLERANCE = 300
"""Seconds a receiver accepts between the signature's ``t`` and its own clock."""
PREFIX = "whsec_"


class SignatureError(ValueError):
    """A delivery whose signature does not hold: forged, altered, stale or malformed."""


def secret_for(webhook_key: str, endpoint_id: UUID, generation: int) -> str:
    """The signing secret of ``endpoint_id``'s ``generation``."""
    mac = hmac.new(
        webhook_key.encode(), f"webhook-endpoint:{endpoint_id}:{generation}".encode(), "sha256"
    )
    return PREFIX + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature(secrets: Sequence[str], body: bytes, timestamp: int) -> str:
    """The ``Ledger-Signature`` value for ``body`` sent at ``timestamp``."""
    return ",".join([f"t={timestamp}", *(f"v1={_mac(s, timestamp, body)}" for s in secrets)])


def verify(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: int = TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery as a receiver does: ``body`` exactly as received (the raw bytes,
    before any JSON parsing), the ``Ledger-Signature`` header, and the endpoint's secret.
    Returns the signed timestamp.

    Raises:
        SignatureError: no or a malformed header, a timestamp further than ``tolerance``
            seconds from ``now``, or no ``v1`` that ``secret`` made for this body.
    """
    parts = [item.partition("=") for item in (header or "").split(",")]
    stamps = [value.strip() for name, _, value in parts if name.strip() == "t"]
    signed = [value.strip() for name, _, value in parts if name.strip() == "v1"]
    well_formed = (
        len(stamps) == 1
        and re.fullmatch(r"[0-9]{1,12}", stamps[0], re.ASCII) is not None
        and signed
        and all(re.fullmatch(r"[0-9a-f]{64}", value) for value in signed)
    )
    if not well_formed:
        raise SignatureError(f"{HEADER} must be t=<seconds>,v1=<hex>[,v1=<hex>]")
    timestamp = int(stamps[0])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"the signature's timestamp is more than {tolerance} s away")
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signed):
        raise SignatureError("no signature of this body made with this secret")
    return timestamp
