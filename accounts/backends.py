"""Login throttling: after LOGIN_MAX_FAILURES failed attempts for one email or from one
client address, logins are refused for LOGIN_LOCKOUT_SECONDS. Counters live in the cache
(Redis in production), so every web process shares them."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied


def _keys(username: str | None, request) -> list[str]:
    ident = (username or "").strip().lower()
    keys = [f"login-fail:user:{hashlib.sha256(ident.encode()).hexdigest()}"]
    if request is not None:
        addr = request.META.get("REMOTE_ADDR", "")
        keys.append(f"login-fail:addr:{addr}")
    return keys


def is_locked_out(username: str | None, request) -> bool:
    return any((cache.get(k) or 0) >= settings.LOGIN_MAX_FAILURES for k in _keys(username, request))


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
