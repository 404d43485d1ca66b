"""Credit API: balance and runway, the ledger, top-ups, auto top-up, events; staff
adjustments and promotional grants (`credits:write`, reason mandatory)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import OrganizationScopedMixin, get_caller
from core import sqlrows
from core.api.idempotency import idempotent
from core.api.pagination import NewestFirstCursorPagination
from core.errors import Conflict, DomainError
from credits import hibernation, services
from credits.admission import admit
from credits.api.serializers import (
    AdjustmentCreateSerializer,
    AdmissionRequestSerializer,
    AdmissionSerializer,
    AutoTopUpSerializer,
    AutoTopUpSettingsSerializer,
    BalanceSerializer,
    CreditEventSerializer,
    LedgerEntrySerializer,
    PromoGrantCreateSerializer,
    PromoGrantSerializer,
    TopUpCreateSerializer,
    TopUpSerializer,
)
from credits.models import (
    AutoTopUpSettings,
    CreditEvent,
    EntryKind,
    EventKind,
    LedgerEntry,
    PromoGrant,
    TopUp,
)
from credits.selectors import credit_summary

ORG_PARAM = OpenApiParameter("organization", int, description="Platform keys and staff: the organisation.")


def _target(request, organization_id=None):
    caller = get_caller(request)
    return caller, caller.target_organization(organization_id or request.query_params.get("organization"))


class BalanceView(APIView):
    required_scopes = {"GET": "billing:read"}

    @extend_schema(parameters=[ORG_PARAM], responses=BalanceSerializer)
    def get(self, request):
        _, org = _target(request)
        return Response(BalanceSerializer(credit_summary(organization=org)).data)


class LedgerFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EntryKind.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    reference = django_filters.CharFilter()

    class Meta:
        model = LedgerEntry
        fields = ["kind", "reference", "created_after", "created_before"]


class LedgerViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The append-only ledger, newest first, cursor-paginated."""

    queryset = LedgerEntry.objects.select_related("actor", "actor_api_key")
    serializer_class = LedgerEntrySerializer
    pagination_class = NewestFirstCursorPagination
    filterset_class = LedgerFilter
    required_scopes = {"list": "billing:read", "retrieve": "billing:read"}


class EventViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Warnings, top-up outcomes, hibernation and resume: for integrators to poll."""

    queryset = CreditEvent.objects.all()
    serializer_class = CreditEventSerializer
    pagination_class = NewestFirstCursorPagination
    filterset_fields = {"kind": ["exact"], "created_at": ["gte", "lt"]}
    required_scopes = {"list": "billing:read", "retrieve": "billing:read"}


class TopUpViewSet(OrganizationScopedMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = TopUp.objects.all()
    serializer_class = TopUpSerializer
    filterset_fields = ["status", "source"]
    required_scopes = {"list": "billing:read", "retrieve": "billing:read", "create": "billing:write"}

    @extend_schema(request=TopUpCreateSerializer, responses={201: TopUpSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = TopUpCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        caller, org = _target(request, data.validated_data.get("organization"))
        topup = services.topup_request(organization=org, amount=data.validated_data["amount"], actor=caller.user,
                                       api_key=caller.api_key)
        return Response(TopUpSerializer(topup).data, status=status.HTTP_201_CREATED)


class AdjustmentView(APIView):
    """Staff: credit or debit an organisation, with a reason."""

    required_scopes = {"POST": "credits:write"}

    @extend_schema(request=AdjustmentCreateSerializer, responses={201: LedgerEntrySerializer})
    @idempotent
    def post(self, request):
        data = AdjustmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        caller, org = _target(request, data.validated_data.get("organization"))
        entry = services.credit_adjust(organization=org, amount=data.validated_data["amount"],
                                       reason=data.validated_data["reason"], reference=data.validated_data["reference"],
                                       actor=caller.user, api_key=caller.api_key)
        return Response(LedgerEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class PromoGrantViewSet(OrganizationScopedMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = PromoGrant.objects.all()
    serializer_class = PromoGrantSerializer
    required_scopes = {"list": "billing:read", "retrieve": "billing:read", "create": "credits:write"}

    @extend_schema(request=PromoGrantCreateSerializer, responses={201: PromoGrantSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = PromoGrantCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        caller, org = _target(request, data.validated_data.get("organization"))
        grant = services.promo_grant(organization=org, amount=data.validated_data["amount"],
                                     expires_at=data.validated_data["expires_at"],
                                     reason=data.validated_data["reason"], actor=caller.user, api_key=caller.api_key)
        return Response(PromoGrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class AutoTopUpView(APIView):
    required_scopes = {"GET": "billing:read", "PUT": "billing:write"}

    @extend_schema(parameters=[ORG_PARAM], responses=AutoTopUpSettingsSerializer)
    def get(self, request):
        _, org = _target(request)
        cfg = AutoTopUpSettings.objects.filter(organization=org).first() or AutoTopUpSettings(organization=org)
        return Response(AutoTopUpSettingsSerializer(cfg).data)

    @extend_schema(parameters=[ORG_PARAM], request=AutoTopUpSerializer, responses=AutoTopUpSettingsSerializer)
    def put(self, request):
        data = AutoTopUpSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        caller, org = _target(request)
        cfg = services.auto_topup_configure(organization=org, actor=caller.user, api_key=caller.api_key,
                                            **data.validated_data)
        return Response(AutoTopUpSettingsSerializer(cfg).data)


class NotHibernated(Conflict):
    code = "not_hibernated"


class ResumeView(APIView):
    """Manual resume after a top-up (when `CREDITS_RESUME_MODE` is manual)."""

    required_scopes = {"POST": "billing:write"}

    @extend_schema(
        parameters=[ORG_PARAM],
        request=None,
        responses={
            200: OpenApiResponse(CreditEventSerializer, description="The `resumed` event."),
            409: OpenApiResponse(
                description="Nothing is hibernated (`not_hibernated`), or the balance is not above zero yet "
                "(`conflict`): top up first."
            ),
        },
    )
    def post(self, request):
        caller, org = _target(request)
        # resume() answers None when nothing is hibernated (also when a concurrent resume won).
        if hibernation.resume(organization_id=org.pk, actor=caller.user) is None:
            raise NotHibernated("Nothing is hibernated: there is nothing to resume.")
        event = CreditEvent.objects.filter(organization=org, kind=EventKind.RESUMED).first()
        return Response(CreditEventSerializer(event).data)


class AdmissionView(APIView):
    """May this organisation start this product now? For the provisioning platform, before
    it starts anything: allowed, or refused with a stable reason code, and the runway the
    organisation would have at the burn rate after the start (credits.admission). Reads
    only; an answer reserves nothing."""

    required_scopes = {"POST": "admission:check"}

    @extend_schema(request=AdmissionRequestSerializer, responses=AdmissionSerializer)
    def post(self, request):
        from pricing.models import Product

        body = AdmissionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        org = get_caller(request).target_organization(body.validated_data["organization"])
        # Bare SQL by the unique code (core.sqlrows: asked on every start, and the ORM's
        # compiling cost more than the query).
        product = sqlrows.get(Product, "t.code = %s", [body.validated_data["product"]])
        if product is None:
            raise DomainError("No such product.", field="product")
        decision = admit(organization=org, product=product, quantity=body.validated_data["quantity"],
                         project=body.validated_data.get("project"))
        return Response(AdmissionSerializer(decision).data)
