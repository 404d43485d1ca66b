"""Where an endpoint may point. Production refuses loopback, private, link-local and
other non-global addresses (server-side request forgery: an endpoint aimed at our own
network or a cloud metadata service); tests and the demo allow them
(`WEBHOOKS_ALLOW_PRIVATE_ADDRESSES`).

Checked when an endpoint is saved and again before every attempt, on every address the
host resolves to (a name that later resolves elsewhere is caught at the attempt). A
rebinding between that check and the connection is not closed here: deployments that
need it put the workers behind an egress proxy."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import DomainError


def check_url(url: str, *, resolve: bool = True) -> None:
    """Raise DomainError(field="url") when the URL may not receive webhooks."""
    parts = urlsplit(url)
    allow_private = settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES
    schemes = ("http", "https") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise DomainError(f"The URL must start with {' or '.join(s + '://' for s in schemes)}.", field="url")
    if not parts.hostname:
        raise DomainError("The URL needs a host.", field="url")
    if parts.username or parts.password:
        raise DomainError("The URL may not carry a user name or password.", field="url")
    if allow_private or not resolve:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise DomainError(f"{parts.hostname} does not resolve.", field="url")
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DomainError(f"{parts.hostname} resolves to {address}, a private or reserved address.", field="url")
