"""The reports:read API: `/api/v1/reports/<name>` for every registered report (one route
and one OpenAPI operation each, made from finance.reports.registry.reports() when the URL
conf loads) and `/api/v1/exports/journal`, the journal's CSV rows as JSON. Platform keys
and staff only: reports:read is no organisation's scope (accounts/scopes.py), so no
customer key or role can hold it, and a report reads every organisation."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import DefaultPagination
from core.api.schema import AutoSchema
from finance.api.serializers import JournalLineSerializer, JournalQuerySerializer, ReportSerializer
from finance.exports import journal_lines
from finance.models import JournalLine
from finance.reporting import MAX_DAYS, MAX_LIMIT, MAX_MONTHS, ReportForm, json_chart, json_rows, json_totals
from finance.reports.base import Report, ReportError, ReportSpec
from finance.reports.registry import reports

SCOPE = "reports:read"


def _spec(name: str) -> ReportSpec:
    spec = reports().get(name)
    if spec is None:
        raise Http404
    return spec


def _form_errors(form: ReportForm) -> serializers.ValidationError:
    """The form's errors in the one error format: field errors under their names, the
    report's own refusal (ReportError) under non_field_errors."""
    fields: dict[str, list[str]] = {}
    for field, errors in form.errors.items():
        fields["non_field_errors" if field == "__all__" else field] = list(errors)
    return serializers.ValidationError(fields)


class ReportSchema(AutoSchema):
    """Each report's operation: its own id, summary, description and choices (grain and
    group_by), read from its ReportSpec."""

    def _report(self) -> ReportSpec:
        return _spec(self.view.report_name)

    def get_operation_id(self) -> str:
        return "report_" + self.view.report_name.replace("-", "_")

    def get_summary(self) -> str:
        return self._report().title

    def get_description(self) -> str:
        spec = self._report()
        return (f"{spec.description}\n\nOne currency over the UTC days [from, to] (both inclusive), per "
                f"{' or '.join(spec.grains)}; at most {MAX_DAYS} days per day, {MAX_MONTHS} months per month. "
                "The rows are paginated (`page`, `page_size`); `totals`, `chart` and `notes` are the whole "
                "report's. Money and every decimal are strings.")

    def get_override_parameters(self) -> list[Any]:
        spec = self._report()
        params = [
            OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="The first day (UTC)."),
            OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="The last day (UTC), inclusive."),
            OpenApiParameter("currency", OpenApiTypes.STR, required=True,
                             description="ISO 4217: one currency, never added to another."),
            OpenApiParameter("grain", OpenApiTypes.STR, enum=list(spec.grains),
                             description=f"Default: {spec.grains[0]}."),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"A top-N list's length, 1 to {MAX_LIMIT}."),
            OpenApiParameter("organization", OpenApiTypes.INT, description="Only this organisation's figures."),
            OpenApiParameter("page", OpenApiTypes.INT, description="A page number within the rows."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="Rows per page (at most 500)."),
        ]
        if spec.group_by:
            params.append(OpenApiParameter("group_by", OpenApiTypes.STR, enum=list(spec.group_by),
                                           description=f"Default: {spec.group_by[0]}."))
        return [*super().get_override_parameters(), *params]


class ReportView(APIView):
    """GET a report: its parameters are the console's form's (finance.reporting.ReportForm),
    so a bad date, an unknown currency or a grouping the report lacks is a 400 with the
    same message under the field's name."""

    required_scopes: ClassVar[dict[str, str]] = {"GET": SCOPE}
    schema = ReportSchema()
    report_name = ""  # set per route (finance/api/urls.py)

    @extend_schema(responses=ReportSerializer)
    def get(self, request: Request) -> Response:
        spec = _spec(self.report_name)
        form = ReportForm(spec, request.query_params)
        if not form.is_valid():
            raise _form_errors(form)
        try:
            report = spec.compute(form.params())
        except ReportError as exc:
            form.add_error(None, str(exc))
            raise _form_errors(form) from None
        return Response(self._body(request, form, report))

    def _body(self, request: Request, form: ReportForm, report: Report) -> dict[str, Any]:
        rows = json_rows(report)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(rows, request, view=self) or []
        p = report.params
        return {
            "name": report.name, "title": report.title, "currency": p.currency, "start": p.start.isoformat(),
            "end": form.cleaned_data["to"].isoformat(), "grain": p.grain, "group_by": p.group_by,
            "organization": p.organization_id, "limit": p.limit,
            "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in report.columns],
            "count": len(rows), "next": paginator.get_next_link(), "previous": paginator.get_previous_link(),
            "results": page, "totals": json_totals(report), "chart": json_chart(report), "notes": list(report.notes),
        }


class JournalExportView(ListAPIView):
    """The journal's lines as JSON, paginated (the console's journal CSV, row for row)."""

    required_scopes: ClassVar[dict[str, str]] = {"GET": SCOPE}
    serializer_class = JournalLineSerializer
    pagination_class = DefaultPagination
    filter_backends: ClassVar[list] = []
    queryset = JournalLine.objects.none()

    @extend_schema(
        operation_id="export_journal",
        summary="The journal's lines",
        description=("Every journal line of the entries dated [from, to] (UTC days, both inclusive), in the order "
                     "and with the cells of the console's journal CSV (/console/finance/journal.csv): money at the "
                     "currency's places as strings, debit or credit (the other null)."),
        parameters=[JournalQuerySerializer],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = JournalQuerySerializer(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        q = query.validated_data
        return journal_lines(q["from"], q["to"], q.get("currency"))
