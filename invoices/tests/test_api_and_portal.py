"""Invoices through the API and the portal: scoped, read-only, staff actions audited."""

from decimal import Decimal

import pytest

from accounts.models import BillingMode
from invoices.models import Invoice
from invoices.tests.factories import make_invoice
from invoices.tests.helpers import hourly_rows, utc


def metered_to(org, when):
    """The organisation's usage metered, stored as spans and rolled up to `when`: the
    month-to-date cut-off."""
    from usage.metering import chunk_count
    from usage.models import MeteringChunk, to_minute

    MeteringChunk.objects.update_or_create(number=org.pk % chunk_count(), defaults={
        "watermark_minute": to_minute(when), "rated_minute": to_minute(when)})

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(org):
    org.billing_mode = BillingMode.POSTPAID
    org.save()
    return make_invoice(org, amounts=("40.00", "2.50"))


def test_customers_list_and_read_their_own_invoices(issued, org_api, other_org):
    make_invoice(other_org, amounts=("9.99",))
    listing = org_api.get("/api/v1/invoices").json()
    assert [row["number"] for row in listing["results"]] == [issued.number]
    detail = org_api.get(f"/api/v1/invoices/{issued.pk}").json()
    assert (detail["total"], len(detail["lines"])) == ("42.500000000000", 2)


def test_customers_cannot_void_or_credit(issued, org_api):
    assert org_api.post(f"/api/v1/invoices/{issued.pk}/void", {"reason": "x"}, format="json").status_code == 403
    body = {"reason": "x", "amount": "1.00"}
    assert org_api.post(f"/api/v1/invoices/{issued.pk}/credit-notes", body, format="json").status_code == 403


def test_staff_void_needs_a_reason(issued, platform_api):
    response = platform_api.post(f"/api/v1/invoices/{issued.pk}/void", {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    response = platform_api.post(f"/api/v1/invoices/{issued.pk}/void", {"reason": "duplicate"}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "void")


@pytest.mark.parametrize("state", ["open", "paid"])
def test_finalizing_an_issued_invoice_again_is_a_409_and_changes_nothing(issued, platform_api, state):
    # PAID -> OPEN is a legal transition (a refund reopens an invoice), so finalize let a
    # paid invoice through: only the immutability trigger stopped a renumber and a second
    # draw on the ledger.
    from credits.models import LedgerEntry
    from invoices import services

    if state == "paid":
        services.invoice_record_payment(invoice=issued, amount=issued.amount_due, reference="wire-1")
    entries = LedgerEntry.objects.count()
    response = platform_api.post(f"/api/v1/invoices/{issued.pk}/finalize", {}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "invalid_transition"
    fresh = Invoice.objects.get(pk=issued.pk)
    assert (fresh.number, fresh.status) == (issued.number, state)
    assert LedgerEntry.objects.count() == entries


def test_staff_issue_a_credit_note(issued, platform_api):
    response = platform_api.post(f"/api/v1/invoices/{issued.pk}/credit-notes",
                                 {"reason": "goodwill", "amount": "2.50"}, format="json")
    assert response.status_code == 201
    assert (response.json()["number"], response.json()["total"]) == ("CN-2026-000001", "2.500000000000")


def test_the_interim_preview_is_computed_not_stored(org, org_api, fixture_pipeline, ledger, time_machine):
    time_machine.move_to(utc(2026, 10, 10, 12), tick=False)
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 10), rate="1.00")}
    metered_to(org, utc(2026, 10, 10, 12))
    body = org_api.get("/api/v1/invoices/interim").json()
    assert (body["total"], body["until"]) == ("216.000000000000", "2026-10-10T12:00:00Z")
    assert Invoice.objects.count() == 0


def test_the_portal_lists_shows_and_downloads_an_invoice(issued, org, make_member, client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)  # another test's INV-2026-000001.pdf would make Django rename this one
    client.force_login(make_member(org, "billing").user)
    assert issued.number in client.get("/invoices/").content.decode()
    assert "Server 0" in client.get(f"/invoices/{issued.pk}/").content.decode()
    pdf = client.get(f"/invoices/{issued.pk}/pdf")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    issued.refresh_from_db()
    assert issued.pdf.name.endswith(f"{issued.number}.pdf")
    assert Decimal(issued.total) == Decimal("42.50")


def test_the_portal_shows_this_months_interim_invoice(org, make_member, client, fixture_pipeline, ledger, time_machine):
    time_machine.move_to(utc(2026, 10, 10, 12), tick=False)
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 10), rate="1.00")}
    metered_to(org, utc(2026, 10, 10, 12))
    client.force_login(make_member(org, "viewer").user)
    page = client.get("/invoices/current").content.decode()
    assert "$216.00" in page and "web-1" in page
    assert "$216.00" in client.get("/").content.decode()  # the dashboard card
    assert Invoice.objects.count() == 0


def test_a_stored_pdf_whose_file_is_gone_is_rendered_again_not_a_500(issued, org, make_member, client, org_api,
                                                                      settings, tmp_path):
    # A restore without the media volume left `invoice.pdf` naming a file that is not there:
    # the download opened it and answered 500 (FileNotFoundError).
    settings.MEDIA_ROOT = str(tmp_path)
    client.force_login(make_member(org, "billing").user)
    assert client.get(f"/invoices/{issued.pk}/pdf").status_code == 200
    issued.refresh_from_db()
    issued.pdf.storage.delete(issued.pdf.name)
    pdf = client.get(f"/invoices/{issued.pk}/pdf")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    issued.pdf.storage.delete(issued.pdf.name)
    api = org_api.get(f"/api/v1/invoices/{issued.pk}/pdf")
    assert api.status_code == 200 and b"".join(api.streaming_content).startswith(b"%PDF")
    issued.refresh_from_db()
    assert issued.pdf.storage.exists(issued.pdf.name)
