"""Webhook API: endpoints (an organisation's own; platform keys and staff also manage
platform-wide ones), the delivery log, replays, the test event and the catalogue. Every
operation needs `webhooks:write`, the catalogue `account:read`."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import OrganizationScopedMixin
from webhooks import services
from webhooks.api.serializers import (
    DeliveryDetailSerializer,
    DeliverySerializer,
    EndpointCreateSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    EndpointWithSecretSerializer,
    EventTypeSerializer,
    ReplayResultSerializer,
    ReplaySerializer,
    RotateSerializer,
)
from webhooks.catalogue import ALL_TYPES
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

SCOPE = "webhooks:write"


class EndpointViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      mixins.DestroyModelMixin, viewsets.GenericViewSet):
    queryset = WebhookEndpoint.objects.order_by("id")
    serializer_class = EndpointSerializer
    filterset_fields = ["status"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_scopes = {a: SCOPE for a in ("list", "retrieve", "create", "partial_update", "destroy",
                                          "rotate_secret", "test", "replay")}

    @extend_schema(request=EndpointCreateSerializer, responses={201: EndpointWithSecretSerializer})
    def create(self, request, *args, **kwargs):
        """An endpoint for the caller's organisation; platform callers name one, or none for a
        platform-wide endpoint. The answer carries the signing secret, shown only now."""
        body = EndpointCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        caller = self.caller
        wanted = body.validated_data.get("organization")
        organization = None if caller.platform and wanted is None else caller.target_organization(wanted)
        endpoint = services.endpoint_create(
            organization=organization, url=body.validated_data["url"], event_types=body.validated_data["event_types"],
            description=body.validated_data["description"], actor=caller.user, api_key=caller.api_key)
        return Response(EndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointUpdateSerializer, responses=EndpointSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Change the URL, event types or description; `enabled` turns it off or on again
        (what waited while it was off is sent then)."""
        endpoint = self.get_object()
        body = EndpointUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, **body.validated_data, actor=self.caller.user,
                                            api_key=self.caller.api_key)
        return Response(EndpointSerializer(endpoint).data)

    def perform_destroy(self, instance):
        services.endpoint_delete(endpoint=instance, actor=self.caller.user, api_key=self.caller.api_key)

    @extend_schema(request=RotateSerializer, responses=EndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret; the old one keeps signing beside it for `overlap_seconds`."""
        endpoint = self.get_object()
        body = RotateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        seconds = body.validated_data.get("overlap_seconds")
        endpoint = services.endpoint_rotate_secret(
            endpoint=endpoint, overlap=None if seconds is None else timedelta(seconds=seconds),
            actor=self.caller.user, api_key=self.caller.api_key)
        return Response(EndpointWithSecretSerializer(endpoint).data)

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a `webhook.test` event to this endpoint now."""
        delivery = services.endpoint_send_test(endpoint=self.get_object(), actor=self.caller.user,
                                               api_key=self.caller.api_key)
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReplaySerializer, responses={202: ReplayResultSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Send again every delivery of this endpoint whose message was emitted in
        [since, until), with the same webhook-ids (at most 1,000 a request)."""
        endpoint = self.get_object()
        body = ReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        count = services.deliveries_replay(endpoint=endpoint, since=body.validated_data["since"],
                                           until=body.validated_data.get("until"), actor=self.caller.user,
                                           api_key=self.caller.api_key)
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)


class DeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.ModelChoiceFilter(queryset=WebhookEndpoint.objects.all())
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event_type = django_filters.CharFilter(field_name="message__event_type")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type"]


class DeliveryViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    """The delivery log, newest first; a delivery's detail has its payload and every attempt."""

    queryset = WebhookDelivery.objects.select_related("message").order_by("-id")
    serializer_class = DeliverySerializer
    organization_field = "endpoint__organization"
    filterset_class = DeliveryFilter
    required_scopes = {"list": SCOPE, "retrieve": SCOPE, "replay": SCOPE}

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "retrieve":
            qs = qs.prefetch_related("attempt_log")
        return qs

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Send this delivery again, with the same webhook-id."""
        delivery = self.get_object()
        services.deliveries_replay(endpoint=delivery.endpoint, delivery_ids=[delivery.pk], actor=self.caller.user,
                                   api_key=self.caller.api_key)
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EventTypeView(APIView):
    """The event catalogue: every type, its payload version, fields and an example."""

    required_scopes = {"GET": "account:read"}

    @extend_schema(responses=EventTypeSerializer(many=True))
    def get(self, request):
        return Response(EventTypeSerializer(list(ALL_TYPES.values()), many=True).data)
