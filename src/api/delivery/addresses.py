"""Where a webhook may be sent: the checks that keep the ledger from being made to call
inside its own network (SSRF).

In production an endpoint's URL must be https, and its host must resolve only to public
addresses: not loopback, private, link-local (the cloud metadata service at 169.254.169.254
among them), shared, reserved or multicast. The host is checked at registration and again
at every connection, and the connection is made to the address that was checked (the TLS
certificate is still verified for the host's name), so a DNS answer that changes between the
check and the connection cannot lead elsewhere. In development any http(s) URL is taken, for
receivers on the developer's own machine.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MAX_URL = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeAddress(ValueError):
    """A URL the ledger will not send to (the message says why)."""


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL to connect to (the checked address in place of the
    host, in production), and the host name for ``Host`` and TLS."""

    url: str
    host: str
    pinned: bool


def check_url(url: str, *, production: bool) -> str:
    """``url`` if the ledger may send to it (its host resolved in production).

    Raises: UnsafeAddress.
    """
    parts = _parts(url, production=production)
    if production:
        public_addresses(parts.hostname or "", parts.port or 443)
    return url


def target(url: str, *, production: bool) -> Target:
    """Where to connect for ``url`` now: in production the host resolved again, checked,
    and pinned.

    Raises: UnsafeAddress.
    """
    parts = _parts(url, production=production)
    host = parts.hostname or ""
    if not production:
        return Target(url, host, pinned=False)
    address = public_addresses(host, parts.port or 443)[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    return Target(urlunsplit(parts._replace(netloc=netloc)), host, pinned=True)


def _parts(url: str, *, production: bool) -> Any:
    if len(url) > MAX_URL:
        raise UnsafeAddress(f"the URL must be at most {MAX_URL} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise UnsafeAddress(
            "the URL must be printable ASCII without spaces (percent-encode anything else)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise UnsafeAddress("the URL is not valid") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeAddress("the URL must be http(s)://host/…")
    if production and parts.scheme != "https":
        raise UnsafeAddress("the URL must be https")
    if parts.username is not None or parts.password is not None:
        raise UnsafeAddress("the URL must not carry credentials (user:password@)")
    if parts.fragment:
        raise UnsafeAddress("the URL must not have a #fragment")
    return parts


def public_addresses(host: str, port: int) -> list[Address]:
    """The addresses ``host`` resolves to, all of them public.

    Raises: UnsafeAddress, for a host that does not resolve, or one of whose addresses is
    not public.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeAddress(f"the host {host} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    for address in addresses:
        if not is_public(address):
            raise UnsafeAddress(
                f"the host {host} resolves to {address}, which is not a public address"
            )
    if not addresses:
        raise UnsafeAddress(f"the host {host} does not resolve")
    return addresses


SITE_LOCAL = ipaddress.ip_network("fec0::/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(address: Address) -> bool:
    """Global unicast only. An IPv6 address carrying an IPv4 one (mapped, 6to4, NAT64) is
    judged by the IPv4 address; Teredo and the deprecated site-local range never pass."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None or address in SITE_LOCAL:
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast and not address.is_reserved
