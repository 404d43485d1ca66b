"""History at hand: the invoice list's search, status filter and year grouping, its CSV,
and a year's PDFs as one zip, each scoped to the member's organisation."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import pytest

from accounts.models import BillingMode
from invoices.models import Invoice, InvoiceStatus
from invoices.tests.factories import make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def postpaid(org):
    org.billing_mode = BillingMode.POSTPAID
    org.save()
    return org


@pytest.fixture
def invoices(postpaid):
    """Three months of 2025 and two of 2026; March 2026 paid."""
    made = {(y, m): make_invoice(postpaid, year=y, month=m, amounts=("40.00", "2.505"))
            for y, m in [(2025, 10), (2025, 11), (2025, 12), (2026, 2), (2026, 3)]}
    Invoice.objects.filter(pk=made[(2026, 3)].pk).update(status=InvoiceStatus.PAID)
    return made


@pytest.fixture
def member(postpaid, make_member, client):
    client.force_login(make_member(postpaid, "viewer").user)
    return client


def _numbers(response) -> list[str]:
    return [inv.number for _year, group in response.context["years"] for inv in group]


def test_the_list_is_grouped_by_year_newest_first(invoices, member):
    response = member.get("/invoices/")
    assert [year for year, _group in response.context["years"]] == [2026, 2025]
    assert [len(group) for _year, group in response.context["years"]] == [2, 3]
    assert 'href="/invoices/2025/pdfs.zip"' in response.content.decode()


@pytest.mark.parametrize(("q", "months"), [
    ("2026-03", [(2026, 3)]),
    ("March 2026", [(2026, 3)]),
    ("nov", [(2025, 11)]),
    ("2025", [(2025, 12), (2025, 11), (2025, 10)]),
])
def test_search_finds_invoices_by_period(invoices, member, q, months):
    assert _numbers(member.get("/invoices/", {"q": q})) == [invoices[m].number for m in months]


def test_search_finds_an_invoice_by_its_number(invoices, member):
    number = invoices[(2025, 11)].number
    assert _numbers(member.get("/invoices/", {"q": number.lower()})) == [number]


def test_status_and_year_filters(invoices, member):
    assert _numbers(member.get("/invoices/", {"status": "paid"})) == [invoices[(2026, 3)].number]
    assert _numbers(member.get("/invoices/", {"status": "open", "year": "2026"})) == [invoices[(2026, 2)].number]


def test_an_unknown_status_or_year_is_a_field_error_not_silently_ignored(invoices, member):
    response = member.get("/invoices/", {"status": "draft", "year": "1999"})
    assert response.status_code == 200
    assert set(response.context["filters"].errors) == {"status", "year"}
    page = response.content.decode()
    assert "Select a valid choice" in page and "Correct the search above" in page
    assert _numbers(response) == []  # not every invoice passed off as the answer


def test_the_csv_has_the_lists_filters_money_at_the_currencys_places_and_utc_times(invoices, member):
    response = member.get("/invoices/export.csv", {"year": "2025"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["number"] for r in rows] == [invoices[(2025, m)].number for m in (12, 11, 10)]
    november = rows[1]
    assert (november["period_start"], november["period_end"]) == ("2025-11-01", "2025-11-30")
    assert november["issued_at_utc"].endswith("Z") and "T" in november["issued_at_utc"]
    assert november["currency"] == "USD"
    assert Decimal(november["subtotal"]) == Decimal("42.51")  # each line rounded once: 40.00 + 2.51
    for name in ("subtotal", "total", "amount_due", "still_due"):
        assert len(november[name].split(".")[1]) == 2, november


def test_a_bad_csv_filter_is_a_400_that_says_why(invoices, member):
    response = member.get("/invoices/export.csv", {"status": "nonsense"})
    assert response.status_code == 400
    assert "status: Select a valid choice" in response.content.decode()


def test_a_years_pdfs_come_as_one_zip(invoices, member, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    response = member.get("/invoices/2025/pdfs.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == [f"{invoices[(2025, m)].number}.pdf" for m in (10, 11, 12)]
    assert all(archive.read(name).startswith(b"%PDF") for name in archive.namelist())


def test_downloads_never_hold_another_organisations_invoices(invoices, other_org, make_member, client, settings,
                                                             tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    other_org.billing_mode = BillingMode.POSTPAID
    other_org.save()
    theirs = make_invoice(other_org, year=2024, month=5)
    client.force_login(make_member(other_org, "owner").user)
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get("/invoices/export.csv").streaming_content).decode())))
    assert [r["number"] for r in rows] == [theirs.number]
    assert client.get("/invoices/2025/pdfs.zip").status_code == 404  # the year of someone else's invoices
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get("/invoices/2024/pdfs.zip").streaming_content)))
    assert archive.namelist() == [f"{theirs.number}.pdf"]
    assert _numbers(client.get("/invoices/", {"q": invoices[(2025, 11)].number})) == []


@pytest.mark.parametrize("year", ["0", "10000", "2147483647"])
def test_a_year_out_of_any_calendar_is_a_404_not_a_500(member, year):
    assert member.get(f"/invoices/{year}/pdfs.zip").status_code == 404
