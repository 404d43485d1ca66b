"""Login throttling: after LOGIN_MAX_FAILURES failed attempts for one email, or
LOGIN_MAX_FAILURES_PER_ADDRESS from one client address, sign-ins are refused for
LOGIN_LOCKOUT_SECONDS. A success clears the email's counter, not the address's (or an
attacker could reset it by signing in to an account of their own between guesses).
Counters live in the cache (Redis in production), so every web process shares them."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

from core.net import client_address


def _keys(username: str | None, request) -> list[str]:
    ident = (username or "").strip().lower()
    keys = [f"login-fail:user:{hashlib.sha256(ident.encode()).hexdigest()}"]
    if request is not None:
        addr = client_address(request)
        keys.append(f"login-fail:addr:{addr}")
    return keys


def is_locked_out(username: str | None, request) -> bool:
    limits = [settings.LOGIN_MAX_FAILURES, settings.LOGIN_MAX_FAILURES_PER_ADDRESS]
    return any((cache.get(k) or 0) >= limit for k, limit in zip(_keys(username, request), limits, strict=False))


def note_failure(username: str | None, request) -> None:
    for k in _keys(username, request):
        cache.add(k, 0, settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(k)
        except ValueError:
            cache.set(k, 1, settings.LOGIN_LOCKOUT_SECONDS)


def clear_failures(username: str | None, request) -> None:
    cache.delete(_keys(username, request)[0])


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if is_locked_out(username, request):
            # PermissionDenied stops Django trying other backends and fails the login.
            raise PermissionDenied("Too many failed sign-ins. Try again later.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            note_failure(username, request)
        else:
            clear_failures(username, request)
        return user
