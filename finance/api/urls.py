"""/api/v1/reports/<name>: one route per registered report (finance.reports.registry), so
each is its own OpenAPI operation; /api/v1/exports/journal."""

from django.urls import URLPattern, path

from finance.api.views import JournalExportView, ReportView
from finance.reports.registry import reports


def report_urlpatterns() -> list[URLPattern]:
    """A route for every report registered now, named report-<name>."""
    return [path(f"reports/{name}", ReportView.as_view(report_name=name), name=f"report-{name}")
            for name in reports()]


urlpatterns = [
    *report_urlpatterns(),
    path("exports/journal", JournalExportView.as_view(), name="export-journal"),
]
