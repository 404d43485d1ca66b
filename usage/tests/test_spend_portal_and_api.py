"""The spend explorer on the portal (page and CSV) and the API: the same cents, field
errors for ranges that cannot be explored, one organisation's spend only."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from invoices.month_to_date import month_to_date
from usage.spend import spend
from usage.tests.conftest import SPEND_NOW
from usage.tests.test_api import _documented

pytestmark = pytest.mark.django_db


def test_the_explorer_shows_this_month_by_day_and_product_by_default(client, owner, org, spend_history):
    client.force_login(owner)
    response = client.get("/usage/spend/")
    assert response.status_code == 200
    page = response.content.decode()
    mtd = month_to_date(organization=org, now=SPEND_NOW)
    assert f'data-testid="mtd">${mtd.subtotal}<' in page
    assert "CPU 2 vCPU" in page and "Memory 8 GB" in page  # names in the legend and table, not codes
    assert 'class="legend"' in page and "cpu-2</li>" not in page
    assert 'aria-current="true" class="on">Day<' in page and 'aria-current="true" class="on">Product<' in page
    # The days spent so far, then the rest of the month as its forecast (the burn rate of
    # web-1 and db-1, $0.0556/h, for the 710 hours from the 10:00 cut-off).
    assert "Sun 2026-03-01" in page and "Mon 2026-03-02" in page and "2026-03-03 – 2026-03-31, still to come" in page
    assert 'class="bars-forecast"' in page and "$0.0556/hour" in page and "710 hours" in page


def test_the_year_preset_shows_months_and_keeps_the_grouping(client, owner, spend_history):
    client.force_login(owner)
    page = client.get("/usage/spend/", {"preset": "12-months", "interval": "month", "group_by": "resource"})
    assert page.status_code == 200
    rows = [r["label"] for r in page.context["period_rows"]]
    assert rows[0] == "April 2025" and rows[-2:] == ["February 2026", "2026-03-01 – 2026-03-02"]
    assert 'href="?preset=12-months&amp;interval=month&amp;group_by=resource"' in page.content.decode()


def test_switching_to_weeks_by_resource_keeps_the_range(client, owner, spend_history):
    client.force_login(owner)
    page = client.get("/usage/spend/", {"start": "2026-02-23", "to": "2026-03-08", "interval": "week",
                                        "group_by": "resource"}).content.decode()
    assert "Week 9, 2026-02-23 – 2026-03-01" in page and "Week 10, 2026-03-02 – 2026-03-08" in page
    assert "web-1" in page and "db-1" in page and "batch" in page


@pytest.mark.parametrize(("query", "field", "message"), [
    ({"start": "garbage"}, "start", "Enter a valid date."),
    ({"start": "2026-03-02", "to": "2026-03-01"}, "to", "To is before From"),
    ({"start": "2025-03-01", "to": "2026-04-04"}, "to", "At most 366 days"),
    ({"start": "2024-01-01", "to": "2024-01-31"}, "start", "kept from 2025-02-01"),
    ({"interval": "fortnight"}, "interval", "Select a valid choice"),
    ({"start": "2026-03-01", "to": "9999-12-31"}, "to", "Enter a date before 9999-12-31"),  # no day after it
])
def test_a_range_that_cannot_be_explored_is_a_field_error(client, owner, spend_clock, query, field, message):
    client.force_login(owner)
    response = client.get("/usage/spend/", query)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert message.split("From")[0] in response.content.decode()
    csv_response = client.get("/usage/spend.csv", query)
    assert csv_response.status_code == 400 and message in csv_response.content.decode()


def test_the_csv_has_the_pages_cents_for_every_period_and_group(client, owner, org, spend_history):
    client.force_login(owner)
    response = client.get("/usage/spend.csv", {"start": "2026-02-23", "to": "2026-03-08", "interval": "day",
                                               "group_by": "resource"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert set(rows[0]) == {"period_start", "period_end", "resource", "name", "amount", "currency"}
    explored = spend(organization=org, start=date(2026, 2, 23), end=date(2026, 3, 9), interval="day",
                     group_by="resource", now=SPEND_NOW)
    assert sum((Decimal(r["amount"]) for r in rows), Decimal(0)) == explored.total > 0
    assert all(len(r["amount"].split(".")[1]) == 2 for r in rows)
    assert {r["resource"] for r in rows} == {"srv-a", "srv-b", "srv-c"}


def test_the_api_answers_spend_as_documented(org_api, org, spend_history):
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    response = org_api.get("/api/v1/spend", {"start": "2026-03-01", "end": "2026-04-01", "interval": "week",
                                             "group_by": "product"})
    assert response.status_code == 200, response.json()
    body = response.json()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    jsonschema.validate(body, _documented(schema, "/api/v1/spend", "get", "200"))
    mtd = month_to_date(organization=org, now=SPEND_NOW)
    assert Decimal(body["total"]) == mtd.subtotal
    assert sum(Decimal(p["total"]) for p in body["periods"]) == mtd.subtotal
    assert [g["name"] for g in body["groups"]][0] in {"CPU 2 vCPU", "Memory 8 GB"}
    assert (body["time_zone"], body["as_of"], body["periods"][0]) == (
        "UTC", "2026-03-02T10:00:00Z", {**body["periods"][0], "start": "2026-03-01", "end": "2026-03-02"})

    forecast = org_api.get("/api/v1/spend/forecast").json()
    jsonschema.validate(forecast, _documented(schema, "/api/v1/spend/forecast", "get", "200"))
    assert Decimal(forecast["month_to_date"]) == mtd.subtotal
    assert Decimal(forecast["forecast"]) > Decimal(forecast["month_to_date"])


@pytest.mark.parametrize(("query", "field"), [
    ({"start": "garbage", "end": "2026-03-02"}, "start"),
    ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
    ({"start": "2025-02-01", "end": "2026-03-08"}, "end"),
    ({"start": "2026-03-01", "end": "2026-03-02", "group_by": "colour"}, "group_by"),
    ({"start": "2026-03-01", "end": "2026-03-02", "interval": "year"}, "interval"),
    ({"start": "2026-03-01", "end": "2026-03-02", "colour": "red"}, "colour"),
])
def test_bad_spend_queries_are_400_in_the_error_format(org_api, spend_clock, query, field):
    response = org_api.get("/api/v1/spend", query)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_another_organisations_key_never_sees_this_organisations_spend(org, other_org, make_key, api,
                                                                       spend_history):
    api = api(make_key(other_org, scopes=["usage:read"]))
    body = api.get("/api/v1/spend", {"start": "2026-03-01", "end": "2026-04-01"}).json()
    assert (body["total"], body["groups"]) == ("0.000000000000", [])
    assert api.get("/api/v1/spend", {"start": "2026-03-01", "end": "2026-04-01",
                                     "organization": org.pk}).status_code in (403, 404)
    assert api.get("/api/v1/spend/forecast").json()["resources"] == []
