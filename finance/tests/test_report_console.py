"""The console's Reports: the index lists every registered report (a report registered by
the test appears with no other edit), a report page shows its form, chart data, table
(money through |money), totals and notes, field errors name the field, and the CSV
holds the same rows through core.csv_export."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from django.contrib.auth.models import Permission
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.tests.factories import OrganizationFactory, UserFactory
from finance.reports.registry import reports
from finance.tests.dummy_report import CALLS, NAME

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_journalentry"))
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_index_and_the_console_home_list_every_registered_report(staff, dummy_report):
    page = _text(staff.get("/console/finance/reports/"))
    assert 'href="/console/finance/reports/usage/">Usage trends</a>' in page
    assert f'href="/console/finance/reports/{NAME}/">Dummy report</a>' in page
    home = _text(staff.get("/console/"))
    assert 'href="/console/finance/reports/">Reports</a>' in home
    assert f'href="/console/finance/reports/{NAME}/">Dummy report</a>' in home


def test_a_report_page_shows_its_table_chart_totals_and_notes(staff, dummy_report):
    response = staff.get(f"/console/finance/reports/{NAME}/?from=2026-10-01&to=2026-11-30&currency=EUR&grain=month")
    assert response.status_code == 200
    assert CALLS[-1].start == date(2026, 10, 1) and CALLS[-1].end == date(2026, 12, 1)  # `to` is inclusive
    assert CALLS[-1].group_by == "product"  # the spec's first grouping
    page = _text(response)
    # Money through |money, rates in full, months through |when:"month", counts grouped.
    assert "<td>October 2026</td>" in page and "<td>November 2026</td>" in page
    assert '<td class="num">€1,234.50</td>' in page and '<td class="num">€2,469.00</td>' in page
    assert '<td class="num">€0.034333333333</td>' in page
    assert '<td class="num">1,000</td>' in page and '<td class="num">12.5 %</td>' in page
    assert '<td class="num">31 days</td>' in page
    # The totals row: the summable columns only, "Total" in the first.
    assert '<tfoot><tr><td>Total</td><td></td><td class="num">€3,703.50</td>' in page
    assert "A note the reader must know." in page
    # The chart's data comes as JSON (json_script), drawn by the vendored Chart.js: no inline script.
    data = json.loads(re.search(r'<script id="report-chart-data" type="application/json">(.*?)</script>',
                                response.content.decode(), re.S).group(1))
    assert data == {"kind": "line", "labels": ["2026-10", "2026-11"], "unit": "EUR",
                    "series": [{"label": "Amount", "values": ["1234.5", "2469.0"], "kind": None}]}
    assert '<script src="/static/vendor/chartjs/chart.umd.min.js"></script>' in page
    assert '<script src="/static/js/finance-reports.js"></script>' in page
    assert f'href="/console/finance/reports/{NAME}.csv?from=2026-10-01&amp;to=2026-11-30&amp;currency=EUR' in page


def test_the_csv_holds_the_same_rows(staff, dummy_report):
    response = staff.get(f"/console/finance/reports/{NAME}.csv?from=2026-11-01&to=2026-11-02&currency=JPY&grain=day")
    assert response.status_code == 200
    assert 'filename="report-dummy-test-JPY-20261101-20261102.csv"' in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == [
        "Period,Label,Amount,Rate,Count,Share,Days",
        # JPY has no minor unit: money at 0 places, half-up; the formula is neutralised.
        "2026-11-01,'=cmd|' /C calc'!A0,1235,0.034333333333,1000,12.5,31",
        "2026-11-02,row 1,2469,0.034333333333,1001,12.5,31",
    ]


def test_opened_from_the_index_it_shows_last_month_to_today_in_the_most_used_currency(staff, dummy_report,
                                                                                       time_machine):
    time_machine.move_to("2026-12-03T10:00:00Z", tick=False)
    OrganizationFactory(currency="EUR")
    OrganizationFactory(currency="EUR")
    OrganizationFactory(currency="USD")
    assert staff.get(f"/console/finance/reports/{NAME}/").status_code == 200
    assert (CALLS[-1].start, CALLS[-1].end, CALLS[-1].currency) == (date(2026, 11, 1), date(2026, 12, 4), "EUR")


@pytest.mark.parametrize(("query", "field", "message"), [
    ("from=2026-11-01&to=2026-11-30", "currency", "This field is required."),
    ("from=2026-11-01&to=2026-11-30&currency=XYZ", "currency", "&#x27;XYZ&#x27; is not an ISO 4217 currency code."),
    ("from=2026-11-31&to=2026-12-01&currency=EUR", "from", "Give a day as YYYY-MM-DD."),
    ("from=2026-12-01&to=2026-11-01&currency=EUR", "to", "The range ends before it starts."),
    ("from=2025-01-01&to=2026-11-01&currency=EUR&grain=day", "to", "A report per day covers at most 366 days"),
    ("from=0001-01-01&to=2026-11-01&currency=EUR", "from", "Give a day from 2000-01-01 to 2999-12-31."),
    ("from=2026-11-01&to=9999-12-31&currency=EUR", "to", "Give a day from 2000-01-01 to 2999-12-31."),
    ("from=2026-11-01&to=2026-11-30&currency=EUR&grain=week", "grain", "Select a valid choice."),
    ("from=2026-11-01&to=2026-11-30&currency=EUR&group_by=country", "group_by", "Select a valid choice."),
    ("from=2026-11-01&to=2026-11-30&currency=EUR&limit=0", "limit", "greater than or equal to 1"),
    ("from=2026-11-01&to=2026-11-30&currency=EUR&organization=999999", "organization", "There is no organisation"),
])
def test_bad_parameters_are_errors_on_their_field_and_the_csv_a_400(staff, dummy_report, query, field, message):
    response = staff.get(f"/console/finance/reports/{NAME}/?{query}")
    assert response.status_code == 400
    page = response.content.decode()
    errors = re.search(rf'<ul class="errorlist" id="id_{field}_errors">(.*?)</ul>', page, re.S)
    assert errors and message in errors.group(1)
    assert "<table" not in page.split("</form>")[1]  # no report under a form with errors
    csv = staff.get(f"/console/finance/reports/{NAME}.csv?{query}")
    assert csv.status_code == 400 and csv["Content-Type"].startswith("text/plain")


def test_a_report_refusing_its_parameters_is_a_form_error(staff, dummy_report):
    response = staff.get(f"/console/finance/reports/{NAME}/?from=2026-11-01&to=2026-11-30&currency=EUR&group_by=broken")
    assert response.status_code == 400
    assert "This grouping cannot be answered for the range." in _text(response)


def test_an_unknown_report_is_a_404(staff):
    assert staff.get("/console/finance/reports/nope/").status_code == 404
    assert staff.get("/console/finance/reports/nope.csv?from=2026-11-01&to=2026-11-30&currency=EUR").status_code == 404


def test_staff_without_the_permission_customers_and_strangers_are_refused(client, dummy_report):
    url = f"/console/finance/reports/{NAME}/"
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login")
    client.force_login(UserFactory())
    assert client.get(url).status_code == 403
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url).status_code == 403
    assert client.get("/console/finance/reports/").status_code == 403


def test_the_usage_report_page_shows_the_hand_computed_figures(staff, rollups):
    response = staff.get("/console/finance/reports/usage/?from=2026-11-01&to=2026-11-30&currency=USD&grain=month")
    assert response.status_code == 200
    page = _text(response)
    # finance/tests/test_report_usage.py computes these by hand.
    assert ('<td>November 2026</td><td>gpu-h100-8x</td><td>H100 × 8</td><td class="num">4.0000</td>'
            '<td class="num">28.0000</td><td class="num">$25.69</td>') in page
    assert '<td class="num">$26.69</td>' in page  # the total: $1.00 + $25.69
    by_customer = _text(staff.get("/console/finance/reports/usage/?from=2026-11-01&to=2026-11-30&currency=USD"
                                  "&group_by=customer&limit=1"))
    assert '<td>Acme</td>' in by_customer and '<td>Globex</td>' not in by_customer
    assert "all of them together: $26.69." in by_customer


@pytest.mark.parametrize("name", list(reports()))
def test_every_registered_report_answers_its_page_and_csv_for_each_grain_and_grouping(staff, rollups, name):
    """Whatever report a module registers: its page, at each grain and grouping it offers,
    is a 200 with a table, and its CSV a header line and one line per row."""
    spec = reports()[name]
    for grain in spec.grains:
        for group_by in spec.group_by or ("",):
            query = f"from=2026-11-01&to=2026-11-30&currency=USD&grain={grain}&group_by={group_by}"
            page = staff.get(f"/console/finance/reports/{name}/?{query}")
            assert page.status_code == 200, (grain, group_by, _text(page)[-600:])
            assert '<div class="module cb-report-table">' in page.content.decode()
            csv = staff.get(f"/console/finance/reports/{name}.csv?{query}")
            assert csv.status_code == 200
            assert b"".join(csv.streaming_content).decode().count("\r\n") >= 1
