"""The reports:read API: /api/v1/reports/<name> for every registered report (a dummy spec
registered by the test gets its route and its OpenAPI operation from the same code that
builds the real ones), /api/v1/exports/journal (the journal CSV's rows as JSON), both
paginated, for platform keys and staff only, errors in the one error format."""

from __future__ import annotations

import csv
import types
from datetime import date

import pytest
from django.contrib.auth.models import Permission
from django.urls import include, path
from rest_framework.test import APIClient

from accounts.scopes import ORGANIZATION_SCOPES, PLATFORM_SCOPES, ROLE_SCOPES
from accounts.tests.factories import OrganizationFactory, UserFactory, make_api_key
from core.errors import DomainError
from finance.exports import CSV_COLUMNS, journal_csv
from finance.journal import journal_build
from finance.reports.registry import reports
from finance.tests.dummy_report import CALLS, NAME
from finance.tests.world import NOW

pytestmark = pytest.mark.django_db
USAGE = "/api/v1/reports/usage?from=2026-11-01&to=2026-11-30&currency=USD"


def _client(scopes=("reports:read",)) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(None, scopes)[1]}")
    return client


@pytest.fixture
def platform():
    return _client()


@pytest.fixture
def dummy_api(dummy_report, settings):
    """The URL conf as it is when the dummy is registered before it loads: the API's report
    routes made again by finance.api.urls.report_urlpatterns(), before the site's own."""
    from billing_site import urls as site
    from finance.api.urls import report_urlpatterns

    conf = types.ModuleType("urls_with_dummy_report")
    conf.urlpatterns = [path("api/v1/", include(report_urlpatterns())), *site.urlpatterns]
    conf.handler404 = site.handler404
    settings.ROOT_URLCONF = conf
    return conf


def _error(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


def test_the_usage_report_with_its_figures_as_strings(platform, rollups):
    body = platform.get(f"{USAGE}&grain=month").json()
    assert (body["name"], body["title"], body["currency"], body["start"], body["end"], body["grain"],
            body["group_by"]) == ("usage", "Usage trends", "USD", "2026-11-01", "2026-11-30", "month", "product")
    assert [c["key"] for c in body["columns"]] == ["period", "product", "product_name", "hours", "gpu_hours",
                                                   "amount"]
    # finance/tests/test_report_usage.py computes these by hand.
    assert body["results"] == [
        {"period": "2026-11", "product": "cpu-4", "product_name": "CPU 4", "hours": "1.0000",
         "gpu_hours": "0.0000", "amount": "1.00"},
        {"period": "2026-11", "product": "gpu-h100-8x", "product_name": "H100 × 8", "hours": "4.0000",
         "gpu_hours": "28.0000", "amount": "25.69"},
    ]
    assert body["totals"] == {"hours": "5.0000", "gpu_hours": "28.0000", "amount": "26.69"}
    assert body["chart"] == {"kind": "stacked-bar", "labels": ["2026-11"], "unit": "GPU-hours",
                             "series": [{"label": "H100 × 8", "values": ["28.0000"], "kind": None}]}
    assert body["count"] == 2 and body["next"] is None and body["notes"]


def test_rows_are_paginated_and_the_totals_are_the_whole_reports(platform, rollups):
    first = platform.get(f"{USAGE}&group_by=customer&page_size=1").json()
    assert first["count"] == 2
    assert [r["customer"] for r in first["results"]] == ["Acme"]
    assert "page=2&page_size=1" in first["next"]
    second = platform.get(first["next"]).json()
    assert [r["customer"] for r in second["results"]] == ["Globex"]
    assert second["previous"] and second["next"] is None
    assert first["totals"] == second["totals"] == {"hours": "5.0000", "gpu_hours": "28.0000", "amount": "26.69"}
    _error(platform.get(f"{USAGE}&page=9"), 404)


def test_any_registered_report_is_served_with_its_cells_by_kind(dummy_api, platform):
    body = platform.get(f"/api/v1/reports/{NAME}?from=2026-10-01&to=2026-11-30&currency=BHD&organization="
                        f"{OrganizationFactory().pk}&limit=3").json()
    assert CALLS[-1].start == date(2026, 10, 1) and CALLS[-1].end == date(2026, 12, 1)
    assert CALLS[-1].limit == 3 and CALLS[-1].organization_id == body["organization"]
    assert body["results"][0] == {"period": "2026-10", "label": "=cmd|' /C calc'!A0", "amount": "1234.500",
                                  "rate": "0.034333333333", "count": 1000, "share": "12.5", "days": 31}
    assert body["totals"] == {"amount": "3703.500", "count": 2001}


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-11-31&to=2026-12-01&currency=EUR", "from"),
    ("to=2026-12-01&currency=EUR", "from"),
    ("from=2026-11-01&to=2026-12-01&currency=XYZ", "currency"),
    ("from=2026-11-01&to=2026-12-01", "currency"),
    ("from=2026-12-01&to=2026-11-01&currency=EUR", "to"),
    ("from=2026-11-01&to=9999-12-31&currency=EUR", "to"),
    ("from=2026-11-01&to=2026-12-01&currency=EUR&grain=week", "grain"),
    ("from=2026-11-01&to=2026-12-01&currency=EUR&group_by=country", "group_by"),
    ("from=2026-11-01&to=2026-12-01&currency=EUR&limit=-1", "limit"),
    ("from=2026-11-01&to=2026-12-01&currency=EUR&organization=99999999", "organization"),
    ("from=2026-11-01&to=2026-12-01&currency=EUR&group_by=broken", "non_field_errors"),
])
def test_bad_parameters_are_a_400_naming_the_field(dummy_api, platform, query, field):
    error = _error(platform.get(f"/api/v1/reports/{NAME}?{query}"), 400)
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [field]


def test_an_unknown_report_is_a_404_in_the_error_format(platform):
    assert _error(platform.get("/api/v1/reports/nope?from=2026-11-01&to=2026-11-30&currency=EUR"), 404)[
        "code"] == "not_found"


def test_reports_read_is_platform_only():
    assert "reports:read" in PLATFORM_SCOPES and "reports:read" not in ORGANIZATION_SCOPES
    assert all("reports:read" not in scopes for scopes in ROLE_SCOPES.values())
    with pytest.raises(DomainError, match="Not a scope a organisation key can hold|reports:read"):
        make_api_key(OrganizationFactory(), ["reports:read"])


def test_who_may_read_reports(rollups):
    other = _client(scopes=("billing:read", "organizations:write"))
    assert _error(other.get(USAGE), 403)["required_scope"] == "reports:read"
    org = OrganizationFactory()
    customer = APIClient()
    customer.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(org)[1]}")
    assert _error(customer.get(USAGE), 403)["required_scope"] == "reports:read"
    assert _error(customer.get("/api/v1/exports/journal?from=2026-11-01&to=2026-11-30"), 403)["required_scope"] \
        == "reports:read"
    for perm in ("platform_read", "platform_write"):
        staff = UserFactory(is_staff=True)
        staff.user_permissions.add(Permission.objects.get(codename=perm))
        session = APIClient()
        session.force_login(staff)
        assert session.get(USAGE).status_code == 200, perm
    assert _error(APIClient().get(USAGE), 401)


# --- The journal --------------------------------------------------------------------------


def test_the_journal_export_is_the_csv_rows_as_json_paginated(world, platform):
    journal_build(now=NOW)
    csv_lines = journal_csv(date_from=date(2026, 11, 1), date_to=date(2026, 12, 31)).splitlines()[1:]
    expected = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in csv.reader(csv_lines)]
    got, url = [], "/api/v1/exports/journal?from=2026-11-01&to=2026-12-31&page_size=7"
    while url:
        page = platform.get(url).json()
        got += page["results"]
        url = page["next"]
    assert page["count"] == len(expected) == len(got) > 7
    for row, want in zip(got, expected, strict=True):
        as_text = {k: "" if v is None else str(v) for k, v in row.items()}
        assert as_text == want
    assert all((r["debit"] is None) != (r["credit"] is None) for r in got)
    eur = platform.get("/api/v1/exports/journal?from=2026-11-01&to=2026-12-31&currency=EUR").json()
    assert eur["count"] == len(expected)  # the fixture is all EUR
    assert platform.get("/api/v1/exports/journal?from=2026-11-01&to=2026-12-31&currency=USD").json()["count"] == 0


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-11-01", "to"), ("from=2026-11-31&to=2026-12-01", "from"), ("from=2026-12-01&to=2026-11-01", "to"),
    ("from=2026-11-01&to=2026-12-01&currency=eur", "currency"), ("from=0001-01-01&to=2026-12-01", "from"),
])
def test_bad_journal_ranges_are_a_400_naming_the_field(platform, query, field):
    error = _error(platform.get(f"/api/v1/exports/journal?{query}"), 400)
    assert field in error["fields"]


# --- The schema ---------------------------------------------------------------------------


def _schema(urlconf=None):
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)


def test_every_registered_report_is_its_own_operation_in_the_schema():
    paths = _schema()["paths"]
    for name, spec in reports().items():
        op = paths[f"/api/v1/reports/{name}"]["get"]
        assert op["operationId"] == "report_" + name.replace("-", "_")
        assert op["summary"] == spec.title
        assert op["x-required-scope"] == "reports:read"
        assert "Platform" in op["tags"] and "Finance" in op["tags"]
        params = {p["name"]: p for p in op["parameters"]}
        assert {"from", "to", "currency", "page", "page_size"} <= set(params)
        assert params["from"]["required"] and params["currency"]["required"]
        assert params["grain"]["schema"]["enum"] == sorted(spec.grains)
        assert {"200", "400", "401", "403", "404"} <= set(op["responses"])
    journal = paths["/api/v1/exports/journal"]["get"]
    assert journal["x-required-scope"] == "reports:read"
    assert {"from", "to", "currency", "page", "page_size"} <= {p["name"] for p in journal["parameters"]}


def test_a_report_registered_later_gets_its_operation_from_the_same_code(dummy_api):
    op = _schema(dummy_api)["paths"][f"/api/v1/reports/{NAME}"]["get"]
    assert op["operationId"] == "report_dummy_test"
    assert {p["name"]: p for p in op["parameters"]}["group_by"]["schema"]["enum"] == ["broken", "customer", "product"]


@pytest.mark.parametrize("name", list(reports()))
def test_every_registered_report_answers_the_api_for_each_grain_and_grouping(platform, rollups, name):
    spec = reports()[name]
    for grain in spec.grains:
        for group_by in spec.group_by or ("",):
            response = platform.get(f"/api/v1/reports/{name}?from=2026-11-01&to=2026-11-30&currency=USD"
                                    f"&grain={grain}&group_by={group_by}")
            assert response.status_code == 200, (grain, group_by, response.content[:400])
            body = response.json()
            keys = {c["key"] for c in body["columns"]}
            assert all(set(row) == keys for row in body["results"])
            assert body["count"] >= len(body["results"])
