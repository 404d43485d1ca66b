"""The client's address, behind however many proxies this deployment trusts.

Behind a load balancer every request comes from the balancer's address, so throttling
on REMOTE_ADDR would lock everyone out together. TRUSTED_PROXY_COUNT (the number of
proxies in front of the app that append to X-Forwarded-For) picks the address the
outermost trusted proxy saw; entries further left are the client's own claims and are
never trusted. 0 (the default) uses REMOTE_ADDR, as a directly exposed server must."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")
