"""Each person picks the zone the portal shows times in; documents stay in UTC and say so."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import AuditLog, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def test_a_person_starts_in_utc(owner):
    assert owner.time_zone == "UTC"


def test_a_person_picks_a_zone_from_the_settings_page_and_it_is_audited(signed_in, owner):
    page = signed_in.get("/settings/").content.decode()
    assert 'name="tz-time_zone"' in page and '<option value="Europe/Amsterdam">' in page
    response = signed_in.post("/settings/time-zone", {"tz-time_zone": "Europe/Amsterdam"})
    assert response.status_code == 302
    assert User.objects.get(pk=owner.pk).time_zone == "Europe/Amsterdam"
    assert AuditLog.objects.filter(action="user.time_zone_changed", actor=owner).exists()


def test_an_unknown_zone_is_a_field_error(signed_in, owner):
    response = signed_in.post("/settings/time-zone", {"tz-time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    assert "time_zone" in response.context["time_zone_form"].errors
    assert User.objects.get(pk=owner.pk).time_zone == "UTC"


def test_portal_pages_show_times_in_the_persons_zone_with_the_zone_named(signed_in, owner, org):
    from credits import services

    services.ledger_post(organization=org, amount=Decimal("5"), kind="adjustment", reason="zone test",
                         at=datetime(2026, 12, 3, 14, 5, tzinfo=UTC))
    assert "2026-12-03 14:05 UTC" in signed_in.get("/credits/").content.decode()
    User.objects.filter(pk=owner.pk).update(time_zone="Asia/Tokyo")
    assert "2026-12-03 23:05 JST" in signed_in.get("/credits/").content.decode()


def test_documents_stay_in_utc_for_a_reader_in_another_zone_and_say_so(org, monkeypatch):
    import weasyprint
    from django.utils import timezone

    from invoices.rendering import render_document_text, render_invoice_pdf
    from invoices.tests.factories import make_invoice

    invoice = make_invoice(org, year=2026, month=11)
    rendered: list[str] = []

    class Capture:
        def __init__(self, *, string, base_url):
            rendered.append(string)

        def write_pdf(self, **kwargs):
            return b"%PDF"

    monkeypatch.setattr(weasyprint, "HTML", Capture)
    at = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    with timezone.override("Asia/Tokyo"):  # as inside a Tokyo reader's request
        render_invoice_pdf(invoice)
        body = render_document_text("payments/receipts/receipt_email.txt", {
            "receipt": type("R", (), {"amount": invoice.total, "currency": invoice.currency, "paid_at": at,
                                      "receipt_number": "R-1"})(), "what": "test"})
    assert "<td>Dates and times</td><td>UTC</td>" in rendered[0]
    assert "2026-12-03" in body and "2026-12-04" not in body
