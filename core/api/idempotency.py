"""`Idempotency-Key` on POST, as a decorator for any DRF view method.

The record is inserted first, in the same transaction as the view's own writes:
- a replay (same caller, key and body) returns the stored response and does nothing;
- the same key with another body is refused with 422;
- a concurrent duplicate blocks on the unique index until the first commits, then
  replays its response; if the first rolled back, it runs as if it were first.
A 5xx or an exception rolls everything back, record included, so a retry runs anew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.exceptions import IdempotencyConflict
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def request_fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    raw = f"{request.method}\n{request.path}\n{body}".encode()
    return hashlib.sha256(raw).hexdigest()


def caller_identity(request: Request) -> str:
    if request.auth is not None and getattr(request.auth, "pk", None) is not None:
        return f"key:{request.auth.pk}"
    user = request.user
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    raise exceptions.NotAuthenticated()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view_method: Callable[..., Response] | None = None, *,
               redact: tuple[str, ...] = ()) -> Callable[..., Any]:
    """`@idempotent`, or `@idempotent(redact=("key",))` for responses holding a secret
    that is shown once: the stored copy has those top-level fields set to null, so the
    secret is never written to the database and a replay does not show it again."""
    if view_method is None:
        return lambda method: idempotent(method, redact=redact)

    @wraps(view_method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise exceptions.ValidationError({HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable characters."]})
        caller = caller_identity(request)
        fingerprint = request_fingerprint(request)

        with transaction.atomic():
            _forget_expired(caller, key)
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        caller=caller,
                        key=key,
                        method=request.method or "",
                        path=request.path[:500],
                        fingerprint=fingerprint,
                        status_code=0,
                    )
            except IntegrityError:
                existing = IdempotencyRecord.objects.get(caller=caller, key=key)
                if existing.fingerprint != fingerprint:
                    raise IdempotencyConflict()
                return _replay(existing)

            response = view_method(self, request, *args, **kwargs)
            if response.status_code >= 500:
                transaction.set_rollback(True)
                return response
            body = json.loads(JSONRenderer().render(response.data) or b"null")
            if redact and isinstance(body, dict):
                body = {name: (None if name in redact else value) for name, value in body.items()}
            record.status_code = response.status_code
            record.response_body = body
            record.save(update_fields=["status_code", "response_body"])
            return response

    wrapper.__dict__["idempotent"] = True  # read by core.api.schema to document the header
    return wrapper


def _forget_expired(caller: str, key: str) -> None:
    cutoff = timezone.now() - settings.IDEMPOTENCY_KEY_TTL
    IdempotencyRecord.objects.filter(caller=caller, key=key, created_at__lt=cutoff).delete()


# One purge DELETE removes at most this many records (a few MB of rows, well under a
# second on the created_at index), so no statement holds many row locks for long. A pass
# runs at most PURGE_MAX_BATCHES of them (a million records); the next pass takes the rest.
PURGE_BATCH_SIZE = 5_000
PURGE_MAX_BATCHES = 200


def purge_expired(
    *, now: datetime | None = None, batch_size: int = PURGE_BATCH_SIZE, max_batches: int = PURGE_MAX_BATCHES
) -> int:
    """Delete records older than `settings.IDEMPOTENCY_KEY_TTL` (they no longer replay
    anything) in batches of `batch_size`, each its own statement; returns how many.
    Safe to run twice or concurrently: a record already gone is simply not deleted again."""
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_KEY_TTL
    expired = IdempotencyRecord.objects.filter(created_at__lt=cutoff).order_by("created_at")
    purged = 0
    for _ in range(max_batches):
        deleted, _by_model = IdempotencyRecord.objects.filter(pk__in=expired.values("pk")[:batch_size]).delete()
        purged += deleted
        if deleted < batch_size:
            break
    return purged
