"""How YouCanPay signs a webhook: hex HMAC-SHA256 of the raw body, keyed with the merchant's
private key. The sandbox signs with the same function, so its webhooks go through exactly
the verification a real one does."""

from __future__ import annotations

import hashlib
import hmac
import re

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def signature_of(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def signs(key: str, body: bytes, signature: str | None) -> bool:
    """Constant-time check that ``signature`` (hex, any case) signs ``body``. Anything
    that is not 64 hex digits is refused first (``compare_digest`` takes ASCII only)."""
    if signature is None or not _HEX_SHA256.fullmatch(signature.strip()):
        return False
    return hmac.compare_digest(signature_of(key, body), signature.strip().lower())
