from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from usage import metering, rollups
from usage.ingest import events_ingest
from usage.models import RatedKind, RatedUsage, Resource, UsageDaily
from usage.tests.conftest import at, billed
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(org, clock):
    product = ProductFactory(code="cpu-4", name="CPU 4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    events_ingest(items=[
        {"id": "e1", "type": "created", "resource": "srv-1", "timestamp": at(10, 0).isoformat(),
         "organization": org.pk, "product": "cpu-4", "name": "web-1"},
        {"id": "e2", "type": "started", "resource": "srv-1", "timestamp": at(10, 17).isoformat()},
    ])
    metering.meter_pass(until=at(12, 0))
    rollups.rollup_pending()
    return product


def test_usage_page_shows_running_resources_their_rate_and_the_month_to_date(org, owner, client, running):
    client.force_login(owner)
    page = client.get("/usage/").content.decode()
    assert "web-1" in page and "$1.20/h" in page
    assert "$2.06" in page  # 103 minutes at $0.02
    assert "<svg" in page and "CPU 4" in page


def test_the_usage_charts_legend_names_products_and_keeps_their_order(org, owner, client, running):
    """Issue 16, defect 9: the legend showed product codes ("cpu-4")."""
    second = ProductFactory(code="a-small", name="Zeta storage")
    add_price(second, "0.05", valid_from=at(0, 0, day=(2026, 1, 1)))
    UsageDaily.objects.create(organization=org, resource=Resource.objects.get(external_id="srv-1"), product=second,
                              state="running", currency="USD", minutes=60, amount=Decimal("0.05"),
                              day=at(0).date())
    client.force_login(owner)
    page = client.get("/usage/").content.decode()
    legend = re.search(r'class="legend">(.*?)</(?:ul|div)>', page, re.S).group(1)
    assert "cpu-4" not in legend and "a-small" not in legend
    # By name, whatever the codes or amounts: a product keeps its place and colour.
    assert legend.index("CPU 4") < legend.index("Zeta storage")


def test_usage_csv_export_has_one_row_per_day_resource_product_and_state(org, owner, client, running):
    client.force_login(owner)
    response = client.get("/usage/export.csv", {"start": "2026-03-01", "end": "2026-03-31"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["day", "resource", "resource_name", "project", "labels", "product", "state", "minutes",
                       "currency", "amount", "amount_exact"]
    assert rows[1:] == [["2026-03-10", "srv-1", "web-1", "", "", "cpu-4", "running", "103", "USD", "2.06",
                         "2.060000000000"]]


def test_usage_csv_export_names_each_resources_project_and_labels(org, owner, client, running):
    """Issue 19, item 1: the daily usage CSV breaks spend down by project and label too."""
    from usage.models import Project

    research = Project.objects.create(organization=org, name="ML research", slug="ml-research")
    Resource.objects.filter(external_id="srv-1").update(project=research, labels={"team": "vision", "env": "prod"})
    client.force_login(owner)
    response = client.get("/usage/export.csv", {"start": "2026-03-01", "end": "2026-03-31"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["resource"], r["project"], r["labels"], r["amount"]) for r in rows] == [
        ("srv-1", "ML research", "env=prod; team=vision", "2.06")]


def test_a_resource_named_like_a_formula_is_exported_as_text(org, owner, client, running):
    # A spreadsheet would run it: =cmd|' /C calc'!A0 reached the export as a live formula.
    Resource.objects.filter(external_id="srv-1").update(name="=cmd|' /C calc'!A0")
    client.force_login(owner)
    response = client.get("/usage/export.csv", {"start": "2026-03-01", "end": "2026-03-31"})
    row = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))[1]
    assert row[2] == "'=cmd|' /C calc'!A0"
    assert row[9:] == ["2.06", "2.060000000000"]  # numbers, negative ones included, stay numbers


@pytest.mark.parametrize(("query", "says"), [
    ({"start": "garbage"}, "From: Enter a date as YYYY-MM-DD"),
    ({"start": "2026-03-01", "end": "2026-02-30"}, "To: Enter a date as YYYY-MM-DD"),
    ({"start": "2026-03-31", "end": "2026-03-01"}, "To: Must be on or after the start date."),
    ({"start": "2025-01-01", "end": "2026-03-31"}, "To: At most 366 days at a time."),
])
def test_a_bad_export_range_is_a_400_that_says_why_not_this_month(org, owner, client, running, query, says):
    client.force_login(owner)
    response = client.get("/usage/export.csv", query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert says in response.content.decode()


def test_csv_cells_are_fixed_point_and_negative_amounts_stay_numbers():
    from core.csv_export import csv_rows, datetime_cell, exact_cell, money_cell

    line = "".join(csv_rows(["a"], [[money_cell(Decimal("-3602.16558333333"), "USD"), exact_cell(Decimal("0")),
                                     money_cell(Decimal("1235.5"), "JPY"), exact_cell(Decimal("-0.0343333333333333")),
                                     datetime_cell(at(10, 17))]]))
    assert line.splitlines()[1] == "-3602.17,0.000000000000,1236,-0.034333333333,2026-03-10T10:17:00Z"


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_every_formula_start_is_neutralised_and_numbers_are_not(text):
    from decimal import Decimal as D

    from core.csv_export import neutralise

    assert neutralise(text) == "'" + text
    assert neutralise(D("-1.50")) == D("-1.50") and neutralise("web-1") == "web-1"


def test_dashboard_card_shows_the_month_to_date(org, owner, client, running):
    client.force_login(owner)
    assert "Usage this month" in client.get("/").content.decode()


def test_meter_command_catches_up_to_the_given_time_and_refuses_the_future(org, running, clock):
    out = io.StringIO()
    call_command("meter", "--until", "2026-03-10T14:00:00Z", stdout=out)
    assert "metered to 2026-03-10 14:00 UTC" in out.getvalue()
    assert billed() == (Decimal("4.46"), 223)
    with pytest.raises(CommandError, match="later than now"):
        call_command("meter", "--until", "2026-03-10T22:59:00Z")
    with pytest.raises(CommandError, match="time zone"):
        call_command("meter", "--until", "2026-03-10T14:00:00")


def test_import_usage_is_idempotent_and_names_each_bad_row(org, clock, tmp_path):
    ProductFactory(code="cpu-4")
    path = tmp_path / "legacy.csv"
    path.write_text(
        "id,organization,resource,product,state,start,end,amount,currency\n"
        f"L1,{org.slug},old-7,cpu-4,running,2025-12-31T23:30:00Z,2026-01-01T01:00:00Z,1.80,USD\n"
        f"L2,{org.slug},old-7,nope,running,2026-01-02T00:00:00Z,2026-01-02T01:00:00Z,1,USD\n"
        f"L3,{org.slug},old-7,cpu-4,running,2026-01-02T00:00:00Z,2026-01-01T01:00:00Z,1,USD\n"
        f"L4,{org.slug},old-7,cpu-4,running,2026-01-02T00:00:00Z,2026-01-02T01:00:00Z,1,EUR\n"
    )
    err = io.StringIO()
    with pytest.raises(CommandError, match="3 rows were refused"):
        call_command("import_usage", str(path), stdout=io.StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        "line 3: product: no product with code 'nope'.",
        "line 4: end: must be after start.",
        "line 5: currency: the organisation is billed in USD, not EUR.",
    ]
    assert billed(kind=RatedKind.IMPORT) == (Decimal("1.80"), 90)
    # Split at the hours (and so at the year's end) with shares adding up to 1.80 exactly.
    assert sorted(UsageDaily.objects.values_list("day", "amount")) == [
        (at(0, 0, day=(2025, 12, 31)).date(), Decimal("0.60")), (at(0, 0, day=(2026, 1, 1)).date(), Decimal("1.20"))]
    assert Resource.objects.get(external_id="old-7").state == "deleted"

    with pytest.raises(CommandError):
        call_command("import_usage", str(path), stdout=(out := io.StringIO()), stderr=io.StringIO())
    assert "0 rows imported, 1 already there" in out.getvalue()
    assert RatedUsage.objects.count() == 2
