"""Sending one delivery: claim it, sign it, POST it outside any transaction, record the
attempt, then succeed, schedule the next try or give up.

At least once: a delivery is claimed for `LEASE` before the request; a worker that
dies mid-request leaves the claim to run out and `webhooks.deliver_due` sends it again
(same webhook-id: the receiver deduplicates). Two senders never hold one claim.

Retries back off exponentially (`retry_delay`: 30 s, 2 min, 8 min, 32 min, ~2 h, ~8.5 h,
then every 12 h) for `WEBHOOKS_RETRY_WINDOW` (3 days) from the window's start; a last
attempt falls at the window's end. A delivery still failing then is `failed`; if its
endpoint has had no success since that delivery began, the endpoint is disabled and its
owners are told by email. Order between messages is not guaranteed (retries overtake):
receivers order by the payload's `sequence` or `timestamp`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import metrics
from core.errors import DomainError
from webhooks import addresses, signing
from webhooks.models import DeliveryStatus, EndpointStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)  # longer than any request (WEBHOOKS_TIMEOUT) and its bookkeeping
DUE_BATCH = 500  # deliveries `deliver_due` hands out per run; the next run takes the rest


def retry_delay(failed_attempts: int) -> timedelta:
    """Wait after the n-th failed attempt (n >= 1)."""
    base: timedelta = settings.WEBHOOKS_RETRY_BASE
    return min(base * 4 ** max(failed_attempts - 1, 0), settings.WEBHOOKS_RETRY_CAP)


def next_attempt(delivery: WebhookDelivery, now: datetime) -> datetime | None:
    """When to try again after a failure at `now`, or None: the window is over."""
    end = delivery.window_started_at + settings.WEBHOOKS_RETRY_WINDOW
    if now >= end:
        return None
    return min(now + retry_delay(delivery.attempts), end)


def _claim(delivery_id: int, now: datetime) -> bool:
    return bool(WebhookDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now,
        endpoint__status=EndpointStatus.ENABLED,
    ).update(claimed_until=now + LEASE))


def _truncate(text: str) -> str:
    limit = WebhookAttempt.BODY_LIMIT
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def deliver(delivery_id: int) -> str | None:
    """Try delivery `delivery_id` once if it is due and nobody else holds it. Returns its
    status after the attempt, or None when there was nothing to do."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        return None
    d = WebhookDelivery.objects.select_related("message", "endpoint").get(pk=delivery_id)
    endpoint, message = d.endpoint, d.message
    body = message.body()
    headers = {"content-type": "application/json", "user-agent": "cloudbill-webhooks/1",
               **signing.headers(msg_id=message.public_id, at=now, body=body,
                                 secrets_=endpoint.signing_secrets(now))}
    status_code: int | None = None
    response_body = ""
    error = ""
    started = time.monotonic()
    try:
        addresses.check_url(endpoint.url)
        response = requests.post(endpoint.url, data=body.encode(), headers=headers,
                                 timeout=settings.WEBHOOKS_TIMEOUT, allow_redirects=False)
        status_code = response.status_code
        response_body = response.text
    except DomainError as exc:
        error = f"Refused: {exc.message}"
    except requests.Timeout:
        error = f"Timed out after {settings.WEBHOOKS_TIMEOUT} s"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    if not ok and not error:
        error = f"HTTP {status_code}"
    shown = {k: v for k, v in headers.items() if k != "webhook-signature"}
    shown["webhook-signature"] = " ".join(s.split(",")[0] + ",…" for s in headers["webhook-signature"].split())
    status = _record(d, at=now, ok=ok, status_code=status_code, error=error, attempt=WebhookAttempt(
        delivery=d, trigger=d.trigger, attempted_at=now, url=endpoint.url, request_headers=shown,
        request_body=_truncate(body), response_status=status_code, response_body=_truncate(response_body),
        error=error, duration_ms=duration_ms))
    # Counted once the attempt is recorded (committed), once per attempt.
    metrics.webhook_delivered("delivered" if ok else "gave_up" if status == DeliveryStatus.FAILED else "failed")
    return status


@transaction.atomic
def _record(d: WebhookDelivery, *, at: datetime, ok: bool, status_code: int | None, error: str,
            attempt: WebhookAttempt) -> str:
    attempt.save()
    d = WebhookDelivery.objects.select_for_update().get(pk=d.pk)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=d.endpoint_id)
    d.claimed_until = None
    d.last_attempt_at = at
    d.last_status_code = status_code
    d.last_error = error[:500]
    if ok:
        d.status = DeliveryStatus.SUCCEEDED
        d.succeeded_at = timezone.now()
        d.next_attempt_at = None
        endpoint.last_success_at = at
    else:
        d.attempts += 1
        endpoint.last_failure_at = at
        d.next_attempt_at = next_attempt(d, timezone.now())
        if d.next_attempt_at is None:
            d.status = DeliveryStatus.FAILED
            if endpoint.status == EndpointStatus.ENABLED and (
                    endpoint.last_success_at is None or endpoint.last_success_at < d.window_started_at):
                _disable(endpoint, d, at)
    d.save()
    endpoint.save(update_fields=["last_success_at", "last_failure_at", "status", "disabled_at", "disabled_reason"])
    return d.status


def _disable(endpoint: WebhookEndpoint, d: WebhookDelivery, at: datetime) -> None:
    from accounts.audit import audit_record
    from core import outbox

    window = settings.WEBHOOKS_RETRY_WINDOW
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_at = at
    endpoint.disabled_reason = (f"Every attempt failed for {window} since {d.window_started_at:%Y-%m-%d %H:%M} UTC "
                                f"(last: {d.last_error or 'no answer'}).")[:300]
    audit_record("webhook_endpoint.disabled", organization=endpoint.organization, obj=endpoint,
                 reason=endpoint.disabled_reason)
    outbox.enqueue("webhooks.endpoint_disabled_email", endpoint.pk)


def deliver_due(*, now: datetime | None = None) -> list[int]:
    """Ids of due deliveries nobody holds (retries, and any whose dispatch was lost),
    oldest message first, at most `DUE_BATCH`."""
    now = now or timezone.now()
    return list(WebhookDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__status=EndpointStatus.ENABLED,
    ).order_by("next_attempt_at", "id").values_list("id", flat=True)[:DUE_BATCH])


def disabled_email(endpoint_id: int) -> int:
    """Tell the endpoint's owners it was disabled: the organisation's owners and admins
    (and whoever made it), or the platform's admins for a platform-wide endpoint."""
    from django.core.mail import mail_admins, send_mail

    from accounts.models import Membership
    from accounts.scopes import Role

    endpoint = WebhookEndpoint.objects.select_related("organization", "created_by").filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.status != EndpointStatus.DISABLED:
        return 0
    subject = f"[{settings.PORTAL_BRAND}] Webhook endpoint disabled: {endpoint.url}"
    text = (f"We stopped sending webhooks to {endpoint.url}.\n\n{endpoint.disabled_reason}\n\n"
            "Events keep being recorded for it. Fix the receiver, enable the endpoint again and replay what it "
            "missed (the endpoint's page, or POST /api/v1/webhook-endpoints/{id}/replay).\n")
    if endpoint.organization is None:
        mail_admins(subject, text)
        return 1
    to = set(Membership.objects.filter(organization=endpoint.organization, role__in=[Role.OWNER, Role.ADMIN],
                                       user__is_active=True).values_list("user__email", flat=True))
    if endpoint.created_by is not None and endpoint.created_by.is_active:
        to.add(endpoint.created_by.email)
    to.discard("")
    if not to:
        return 0
    return send_mail(subject, text, None, sorted(to))
