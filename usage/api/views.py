"""Usage API: event ingestion for the platform, resources and their history, usage
series and month to date for customers."""

from __future__ import annotations

from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import OrganizationScopedMixin, get_caller
from core.api.parsers import BoundedJSONParser, CloudEventBatchParser, CloudEventParser
from core.errors import NotFound
from pricing.models import Product
from usage.api.schema import CLOUDEVENT_BATCH_SCHEMA, CLOUDEVENT_SCHEMA
from usage.api.serializers import (
    BillableQuerySerializer,
    EventBatchResultSerializer,
    EventBatchSerializer,
    MeasuredBillableSerializer,
    MonthToDateSerializer,
    ProjectSerializer,
    ResourceSerializer,
    SpendForecastSerializer,
    SpendQuerySerializer,
    SpendSerializer,
    StateIntervalSerializer,
    UsageQuerySerializer,
    UsageSeriesSerializer,
)
from usage.billable import MonthError, measured_vs_billable, parse_month
from usage.ingest import MAX_BATCH, events_ingest
from usage.labels import SLUG, LabelError, parse_label_filter
from usage.models import Project, Resource
from usage.selectors import month_to_date, usage_series
from usage.spend import forecast, spend, spend_zone

ORG_PARAM = OpenApiParameter("organization", int, description="Platform keys and staff: the organisation.")


class EventsView(APIView):
    """POST a batch of up to 1,000 events. Every event gets its own result; the batch is
    200 even when some are rejected. Re-sending an event id is safe: it is `duplicate`.

    Also CloudEvents 1.0 in the JSON format: one event (`application/cloudevents+json`,
    structured mode) or an array of up to 1,000 (`application/cloudevents-batch+json`),
    deduplicated on (source, id); each result also names the event's `source`. Binary
    mode (`ce-*` headers) is not taken."""

    required_scopes = {"POST": "events:write"}
    parser_classes = [BoundedJSONParser, CloudEventParser, CloudEventBatchParser]

    @extend_schema(request={
        "application/json": EventBatchSerializer,
        CloudEventParser.media_type: CLOUDEVENT_SCHEMA,
        CloudEventBatchParser.media_type: CLOUDEVENT_BATCH_SCHEMA,
    }, responses=EventBatchResultSerializer, examples=[
        OpenApiExample("A server's life", request_only=True, value={"events": [
            {"id": "evt-1", "type": "created", "resource": "srv-42", "timestamp": "2026-03-01T10:00:00Z",
             "organization": 17, "product": "cpu-4-16", "kind": "server", "name": "web-1"},
            {"id": "evt-2", "type": "started", "resource": "srv-42", "timestamp": "2026-03-01T10:01:00Z"},
            {"id": "evt-3", "type": "resized", "resource": "srv-42", "timestamp": "2026-03-01T12:00:00Z",
             "product": "cpu-8-32"},
            {"id": "evt-4", "type": "metered", "resource": "srv-42", "timestamp": "2026-03-01T13:00:00Z",
             "metric": "egress-gb", "quantity": "12.5"},
            {"id": "evt-5", "type": "deleted", "resource": "srv-42", "timestamp": "2026-03-02T09:30:00Z"},
        ]}),
        OpenApiExample("Each event answered on its own", response_only=True, value={
            "accepted": 1, "duplicates": 1, "rejected": 1, "results": [
                {"id": "evt-1", "status": "accepted"},
                {"id": "evt-2", "status": "duplicate"},
                {"id": "evt-3", "status": "rejected", "reason": "product: no product with code 'cpu-9'."},
            ]}),
    ])
    def post(self, request):
        media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
        if media_type == CloudEventParser.media_type:
            event = request.data
            if not isinstance(event, dict):
                raise ValidationError({"non_field_errors": ["Send one CloudEvent as a JSON object "
                                                            "(a batch is application/cloudevents-batch+json)."]})
            return Response(events_ingest(items=[event], cloudevents=True).as_dict())
        if media_type == CloudEventBatchParser.media_type:
            batch = request.data
            if not isinstance(batch, list) or len(batch) > MAX_BATCH:
                raise ValidationError({"non_field_errors": [f"Send a JSON array of 0 to {MAX_BATCH} CloudEvents."]})
            return Response(events_ingest(items=batch, cloudevents=True).as_dict())
        if "ce-specversion" in request.headers:
            raise ValidationError({"non_field_errors": [
                "CloudEvents binary mode is not taken: send the event structured "
                "(Content-Type: application/cloudevents+json)."]})
        # The envelope is checked by hand: EventBatchSerializer documents it, but running it
        # would re-serialise every event (DRF's JSONField), a third of the cost of a batch.
        data = request.data
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["Send an object: {\"events\": [...]}."]})
        unknown = sorted(set(data) - {"events"})
        if unknown:
            raise ValidationError({name: ["Unknown field."] for name in unknown})
        events = data.get("events")
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
            raise ValidationError({"events": [f"A list of 1 to {MAX_BATCH} events."]})
        return Response(events_ingest(items=events).as_dict())


RESOURCE_FILTERS = [
    OpenApiParameter("project", str, description="A project's slug; `-` for resources in no project."),
    OpenApiParameter("label", str, many=True, description=(
        "`key:value` (that value) or `key` (any value); repeat it for resources carrying every one.")),
]


class ResourceViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    queryset = Resource.objects.select_related("product", "project").order_by("id")
    serializer_class = ResourceSerializer
    required_scopes = {"list": "usage:read", "retrieve": "usage:read", "history": "usage:read",
                       "billable": "usage:read"}
    filterset_fields = ["state", "kind", "external_id"]

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action != "list":
            return qs
        params = self.request.query_params
        project = params.get("project")
        if project is not None:
            if project != "-" and not SLUG.fullmatch(project):
                raise ValidationError({"project": ["A project's slug, or - for resources in no project."]})
            qs = qs.filter(project__isnull=True) if project == "-" else qs.filter(project__slug=project)
        for text in params.getlist("label"):
            try:
                key, value = parse_label_filter(text)
            except LabelError as exc:
                raise ValidationError({"label": [f"{text[:80]!r}: {exc} Use key:value or key."]}) from None
            qs = qs.filter(labels__contains={key: value}) if value is not None else qs.filter(labels__has_key=key)
        return qs

    @extend_schema(parameters=RESOURCE_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses=StateIntervalSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """The resource's state intervals, oldest first: `[start, end)`, end null while current."""
        resource = self.get_object()
        qs = resource.intervals.select_related("eff_product").order_by("started_at", "id")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(StateIntervalSerializer(page, many=True).data)

    @extend_schema(parameters=[BillableQuerySerializer], responses=MeasuredBillableSerializer)
    @action(detail=True, methods=["get"])
    def billable(self, request, pk=None):
        """Measured against billable for one month: minutes the platform reported per state,
        minutes billed, minutes excluded and why, what minimum billable time added and what
        a monthly cap saved (docs/usage.md, "Measured vs billable")."""
        resource = self.get_object()
        query = BillableQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            month = parse_month(query.validated_data.get("month"), today=timezone.now().date())
        except MonthError as exc:
            raise ValidationError({"month": [str(exc)]}) from None
        return Response(MeasuredBillableSerializer(measured_vs_billable(resource=resource, month=month)).data)


def _organization(request, organization_id):
    return get_caller(request).target_organization(organization_id)


class UsageView(APIView):
    """Net minutes and amount per period, resource, product and state over `[start, end)`.
    Minute granularity reads the per-minute detail (kept for a limited time, see README)."""

    required_scopes = {"GET": "usage:read"}

    @extend_schema(parameters=[UsageQuerySerializer], responses=UsageSeriesSerializer)
    def get(self, request):
        query = UsageQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        q = query.validated_data
        org = _organization(request, q.get("organization"))
        resource_id = q.get("resource")
        if resource_id is not None and not Resource.objects.filter(pk=resource_id, organization=org).exists():
            raise NotFound("No such resource.", field="resource")
        product_id = None
        if q.get("product"):
            product_id = Product.objects.filter(code=q["product"]).values_list("id", flat=True).first()
            if product_id is None:
                raise NotFound("No such product.", field="product")
        points = usage_series(organization=org, start=q["start"], end=q["end"], granularity=q["granularity"],
                              resource_id=resource_id, product_id=product_id)
        return Response(UsageSeriesSerializer({"granularity": q["granularity"], "currency": org.currency,
                                               "results": points}).data)


class MonthToDateView(APIView):
    """This calendar month so far: the interim invoice's total (tax included) cut off at
    `as_of`, the minute up to which usage is metered and rolled up; the same figure as the
    portal's pages and `GET /invoices/interim`."""

    required_scopes = {"GET": "usage:read"}

    @extend_schema(parameters=[ORG_PARAM], responses=MonthToDateSerializer)
    def get(self, request):
        org = _organization(request, request.query_params.get("organization"))
        mtd = month_to_date(organization=org, now=timezone.now())
        data = {"month": mtd.month, "amount": mtd.total, "subtotal": mtd.subtotal, "tax_total": mtd.tax_total,
                "currency": mtd.currency, "as_of": mtd.as_of, "metered_until": mtd.as_of,
                "by_product": mtd.by_product}
        return Response(MonthToDateSerializer(data).data)


class SpendView(APIView):
    """Spend over `[start, end)` (days, UTC) per day, ISO week or month, by product,
    resource, project or the value of one label (`group_by=label&label_key=team`), in whole minor units that add up to what the invoices say (each invoice
    line's rounded amount split over its days). At most 366 days; from the first month
    whose hourly history is still kept."""

    required_scopes = {"GET": "usage:read"}

    @extend_schema(parameters=[SpendQuerySerializer], responses=SpendSerializer)
    def get(self, request):
        query = SpendQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        q = query.validated_data
        org = _organization(request, q.get("organization"))
        result = spend(organization=org, start=q["start"], end=q["end"], interval=q["interval"],
                       group_by=q["group_by"], now=timezone.now(), zone=spend_zone(), label_key=q.get("label_key", ""))
        data = {
            "start": result.start, "end": result.end, "interval": result.interval, "group_by": result.group_by,
            "label_key": result.label_key,
            "time_zone": result.zone, "currency": result.currency, "as_of": result.as_of, "total": result.total,
            "groups": [{"key": s.group.key, "name": s.group.name, "total": s.total} for s in result.series],
            "periods": [{"start": a, "end": b, "total": t,
                         "amounts": [{"group": s.group.key, "amount": s.amounts[i]} for s in result.series
                                     if s.amounts[i]]}
                        for i, ((a, b), t) in enumerate(zip(result.periods, result.period_totals, strict=True))],
        }
        return Response(SpendSerializer(data).data)


class SpendForecastView(APIView):
    """This month to date and the forecast to month end, in total and per resource."""

    required_scopes = {"GET": "usage:read"}

    @extend_schema(parameters=[ORG_PARAM], responses=SpendForecastSerializer)
    def get(self, request):
        org = _organization(request, request.query_params.get("organization"))
        fc = forecast(organization=org, now=timezone.now())
        data = {
            "month": fc.month, "as_of": fc.as_of, "currency": fc.currency, "month_to_date": fc.month_to_date,
            "hourly_rate": fc.hourly_rate, "hours_left": fc.hours_left, "forecast": fc.forecast,
            "method": "month_to_date + hourly_rate × hours_left, per resource, each rounded to the minor unit",
            "resources": [{"key": r.group.key, "name": r.group.name, "month_to_date": r.month_to_date,
                           "hourly_rate": r.hourly_rate, "forecast": r.forecast} for r in fc.resources],
        }
        return Response(SpendForecastSerializer(data).data)


class ProjectViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     viewsets.GenericViewSet):
    """The organisation's projects (issue 19): created by the platform's events on first use
    or in the portal; resources name them by slug."""

    queryset = Project.objects.annotate(resource_count=Count("resources")).order_by("name", "id")
    serializer_class = ProjectSerializer
    required_scopes = {"list": "usage:read", "retrieve": "usage:read"}
