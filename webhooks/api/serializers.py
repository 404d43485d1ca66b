from __future__ import annotations

from datetime import UTC, datetime

from rest_framework import serializers

from core.api.serializers import StrictSerializer
from webhooks.catalogue import SUBSCRIBABLE
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointSerializer(serializers.ModelSerializer):
    platform_wide = serializers.BooleanField(source="is_platform", read_only=True)
    secret_rotation_ends_at = serializers.DateTimeField(source="previous_secret_expires_at", read_only=True,
                                                        allow_null=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "organization", "platform_wide", "url", "description", "event_types", "status",
                  "disabled_reason", "disabled_at", "last_success_at", "last_failure_at",
                  "secret_rotation_ends_at", "created_at"]
        read_only_fields = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    """The answer to a create or a rotation: the only time the secret is shown."""

    secret = serializers.CharField(read_only=True, help_text="whsec_…: verify signatures with it. Shown only now.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class EndpointCreateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=500)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=SUBSCRIBABLE), min_length=1,
                                        max_length=len(SUBSCRIBABLE))
    description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    organization = serializers.IntegerField(
        required=False, allow_null=True, min_value=1,
        help_text="Platform keys: the organisation; leave out for a platform-wide endpoint. Others: their own.")


class EndpointUpdateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=500, required=False)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=SUBSCRIBABLE), min_length=1,
                                        max_length=len(SUBSCRIBABLE), required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class RotateSerializer(StrictSerializer):
    overlap_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=7 * 24 * 3600,
        help_text="How long the old secret keeps signing beside the new one (default 86400).")


def _utc(value: datetime | None) -> datetime | None:
    """In UTC before it reaches a query: PostgreSQL refuses offsets beyond ±15:59, which
    Python accepts (a 500 otherwise); one that cannot be converted is a 400."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise serializers.ValidationError("This date and time is out of range.")


class ReplaySerializer(StrictSerializer):
    since = serializers.DateTimeField(help_text="Replay deliveries of messages emitted at or after this time.")
    until = serializers.DateTimeField(required=False, allow_null=True, help_text="… and before this time.")

    def validate_since(self, value: datetime) -> datetime | None:
        return _utc(value)

    def validate_until(self, value: datetime | None) -> datetime | None:
        return _utc(value)


class ReplayResultSerializer(serializers.Serializer):
    replayed = serializers.IntegerField()


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["id", "trigger", "attempted_at", "url", "request_headers", "request_body", "response_status",
                  "response_body", "error", "duration_ms"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    message_id = serializers.CharField(source="message.public_id", read_only=True,
                                       help_text="The webhook-id header: the same on every attempt and replay.")
    event_type = serializers.CharField(source="message.event_type", read_only=True)
    sequence = serializers.IntegerField(source="message.pk", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "message_id", "event_type", "sequence", "status", "trigger", "attempts",
                  "next_attempt_at", "last_attempt_at", "last_status_code", "last_error", "succeeded_at",
                  "created_at"]
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    payload = serializers.SerializerMethodField()
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "payload", "attempt_log"]
        read_only_fields = fields

    def get_payload(self, obj) -> dict:
        return obj.message.payload()


class EventTypeSerializer(serializers.Serializer):
    type = serializers.CharField(source="name")
    version = serializers.IntegerField()
    description = serializers.CharField()
    fields = serializers.DictField(child=serializers.CharField())
    example = serializers.DictField()
