"""Outbound webhooks: endpoints, the messages emitted for them, one delivery per
(message, endpoint) and the log of its attempts.

A message is written in the transaction of the change it reports (`webhooks.services.emit`),
so it exists if and only if that change committed; its deliveries are sent after commit.
Messages and attempts are never edited; a delivery's state moves under its row claim.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class EndpointStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class WebhookEndpoint(models.Model):
    """Where one organisation (or, with no organisation, the platform) wants events.

    `secret` signs every request (Standard Webhooks, `whsec_` + base64). After a rotation
    `previous_secret` signs too until `previous_secret_expires_at`, so a receiver that has
    not switched yet still verifies (the webhook-signature header carries both)."""

    organization = models.ForeignKey("accounts.Organization", null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="webhook_endpoints",
                                     help_text="Empty: a platform-wide endpoint, receiving every organisation's events.")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = ArrayField(models.CharField(max_length=40), help_text="Types from webhooks.catalogue.")
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=EndpointStatus.choices, default=EndpointStatus.ENABLED)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_failure_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["organization", "status"], name="webhooks_endpoint_org_status")]

    def __str__(self) -> str:
        return f"{self.url} ({self.organization or 'platform'})"

    @property
    def is_platform(self) -> bool:
        return self.organization_id is None

    def signing_secrets(self, now: datetime) -> list[str]:
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret)
        return secrets


class WebhookMessage(models.Model):
    """One event, as every endpoint receives it. `public_id` is the webhook-id: the same
    on every attempt and replay, so a receiver deduplicates on it. `id` is the message's
    place in the order events were emitted (the payload's `sequence`)."""

    public_id = models.CharField(max_length=40, unique=True)
    organization = models.ForeignKey("accounts.Organization", null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="+")
    event_type = models.CharField(max_length=40)
    version = models.PositiveSmallIntegerField()
    data = models.JSONField(encoder=DjangoJSONEncoder)
    occurred_at = models.DateTimeField(default=timezone.now)
    # An event that must be reported once whatever calls it (invoice.overdue:<id>); blank: none.
    dedup_key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["dedup_key"], condition=~models.Q(dedup_key=""),
                                               name="webhooks_message_dedup_uniq")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.public_id}"

    def payload(self) -> dict:
        return {
            "id": self.public_id,
            "type": self.event_type,
            "version": self.version,
            "timestamp": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "sequence": self.pk,
            "organization": self.organization_id,
            "data": self.data,
        }

    def body(self) -> str:
        """The exact bytes signed and sent: the same for every attempt."""
        return json.dumps(self.payload(), cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One message to one endpoint: retried with backoff until a 2xx, for at most
    `WEBHOOKS_RETRY_WINDOW` from `window_started_at` (creation, or the last replay)."""

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    # Why it is being sent now: event (emitted), replay (asked again), test (the test button).
    trigger = models.CharField(max_length=10, default="event")
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts since the window started.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    window_started_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["message", "endpoint"], name="webhooks_delivery_uniq")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"),
                         name="webhooks_delivery_due"),
            models.Index(fields=["endpoint", "-id"], name="webhooks_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.message.event_type} → {self.endpoint.url} ({self.status})"

    @property
    def organization_id(self) -> int | None:
        return self.endpoint.organization_id


class WebhookAttempt(models.Model):
    """One HTTP request and what came back, bodies truncated (`BODY_LIMIT`)."""

    BODY_LIMIT = 4096

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    trigger = models.CharField(max_length=10, default="event")  # the delivery's trigger at the time
    attempted_at = models.DateTimeField(default=timezone.now)
    url = models.URLField(max_length=500)
    request_headers = models.JSONField(default=dict)
    request_body = models.TextField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.response_status or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300
