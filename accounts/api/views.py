from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api.permissions import OrganizationScopedMixin, get_caller
from accounts.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    InvitationSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MembershipUpdateSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    OwnOrganizationSerializer,
)
from accounts.models import ApiKey, Membership, Organization, User
from core.api.idempotency import idempotent
from core.errors import NotFound

ORGANIZATION_PARAMETER = OpenApiParameter(
    "organization", int, description="Platform callers: the organisation acted on (required to create a key). "
    "Organisation keys act on their own; naming another is a 404.",
)


class OwnOrganizationView(APIView):
    """The caller's own organisation (customer keys and portal sessions)."""

    required_scopes = {"GET": "account:read", "PATCH": "account:write"}

    def _org(self) -> Organization:
        caller = get_caller(self.request)
        if caller.organization is None:
            raise NotFound("This caller does not belong to one organisation; use /organizations/{id}/.")
        return caller.organization

    @extend_schema(responses=OwnOrganizationSerializer)
    def get(self, request):
        return Response(OwnOrganizationSerializer(self._org()).data)

    @extend_schema(request=OwnOrganizationSerializer, responses=OwnOrganizationSerializer)
    def patch(self, request):
        org = self._org()
        serializer = OwnOrganizationSerializer(org, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        caller = get_caller(request)
        org = services.organization_update(
            organization=org, actor=caller.user, api_key=caller.api_key, **serializer.validated_data
        )
        return Response(OwnOrganizationSerializer(org).data)


class OrganizationViewSet(
    OrganizationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Organisations. Customers see only their own; platform keys and staff see all."""

    queryset = Organization.objects.all().order_by("id")
    serializer_class = OrganizationSerializer
    organization_field = "pk"
    http_method_names = ["get", "post", "patch", "head", "options"]
    required_scopes = {
        "list": "account:read",
        "retrieve": "account:read",
        "create": "organizations:write",
        "partial_update": "organizations:write",
    }
    filterset_fields = {
        "billing_mode": ["exact"], "currency": ["exact"], "country": ["exact"], "is_active": ["exact"],
        "created_at": ["gte", "lt"],
    }

    def get_serializer_class(self):
        return OrganizationCreateSerializer if self.action == "create" else OrganizationSerializer

    @idempotent
    def create(self, request, *args, **kwargs):
        serializer = OrganizationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        owner_email = data.pop("owner_email", None)
        caller = get_caller(request)
        with transaction.atomic():
            org = services.organization_create(actor=caller.user, api_key=caller.api_key, **data)
            if owner_email:
                services.member_add_or_invite(organization=org, email=owner_email, role="owner", by=caller)
        return Response(OrganizationSerializer(org).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        org = self.get_object()
        serializer = OrganizationSerializer(org, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        caller = get_caller(request)
        org = services.organization_update(
            organization=org, actor=caller.user, api_key=caller.api_key, staff=True, **serializer.validated_data
        )
        return Response(OrganizationSerializer(org).data)


class MemberViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of one organisation: `/organizations/{organization_pk}/members/`."""

    # The rows come from get_queryset (cut to an organisation the caller may see); this
    # names the model for the schema and the tenant-isolation test.
    queryset = Membership.objects.none()
    serializer_class = MembershipSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_scopes = {
        "list": "account:read",
        "retrieve": "account:read",
        "create": "members:write",
        "partial_update": "members:write",
        "destroy": "members:write",
    }

    def organization(self) -> Organization:
        caller = get_caller(self.request)
        qs = caller.scope_queryset(Organization.objects.all(), "pk")
        return get_object_or_404(qs, pk=self.kwargs["organization_pk"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return Membership.objects.filter(organization=self.organization()).select_related("user").order_by("id")

    def get_serializer_class(self):
        return {"create": MembershipCreateSerializer, "partial_update": MembershipUpdateSerializer}.get(
            self.action, MembershipSerializer
        )

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer, 202: InvitationSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        organization = self.organization()  # another organisation's id is a 404 before anything else
        serializer = MembershipCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        caller = get_caller(request)
        result = services.member_add_or_invite(organization=organization, by=caller, **serializer.validated_data)
        if isinstance(result, Membership):
            return Response(MembershipSerializer(result).data, status=status.HTTP_201_CREATED)
        return Response(InvitationSerializer(result).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=MembershipUpdateSerializer, responses=MembershipSerializer)
    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        serializer = MembershipUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            membership=membership, role=serializer.validated_data["role"], by=get_caller(request)
        )
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request, *args, **kwargs):
        services.membership_remove(membership=self.get_object(), by=get_caller(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyViewSet(
    OrganizationScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The organisation's API keys. DELETE revokes (the row stays for the audit trail)."""

    queryset = ApiKey.objects.filter(organization__isnull=False).order_by("-created_at")
    serializer_class = ApiKeySerializer
    required_scopes = {"list": "account:read", "retrieve": "account:read", "create": "api_keys:write",
                       "destroy": "api_keys:write"}

    @extend_schema(parameters=[ORGANIZATION_PARAMETER])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer},
                   parameters=[ORGANIZATION_PARAMETER])
    @idempotent(redact=("key",))
    def create(self, request, *args, **kwargs):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        caller = get_caller(request)
        org = caller.target_organization(request.query_params.get("organization"))
        key, full = services.api_key_create(organization=org, by=caller, **serializer.validated_data)
        data = ApiKeySerializer(key).data
        data["key"] = full
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiResponse(ApiKeySerializer, description="The key, revoked (`revoked_at` set).")})
    def destroy(self, request, *args, **kwargs):
        caller = get_caller(request)
        key = services.api_key_revoke(api_key=self.get_object(), actor=caller.user, by_key=caller.api_key)
        return Response(ApiKeySerializer(key).data, status=status.HTTP_200_OK)


__all__ = ["User"]
