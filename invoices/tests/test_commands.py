"""invoice_run and invoice_preview: readable output, readable errors."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from invoices.models import Invoice
from invoices.tests.helpers import hourly_rows, utc

pytestmark = pytest.mark.django_db


@pytest.fixture
def billed_org(fixture_pipeline, ledger):
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID, name="Acme")
    fixture_pipeline[org.pk] = {"usage": hourly_rows(start=utc(2026, 10, 1), end=utc(2026, 10, 11), rate="1.00")}
    return org


def test_invoice_run_bills_a_closed_month_once(billed_org, time_machine):
    time_machine.move_to(utc(2026, 11, 3), tick=False)
    out = StringIO()
    call_command("invoice_run", "--period", "2026-10", "--no-pdf", "--no-email", stdout=out)
    assert out.getvalue().strip() == "2026-10: 1 invoiced, 0 without charges, 0 failed, 1 examined"
    out = StringIO()
    call_command("invoice_run", "--period", "2026-10", stdout=out)
    assert out.getvalue().strip() == "2026-10: 0 invoiced, 0 without charges, 0 failed, 0 examined"
    assert Invoice.objects.get().total == 240


def test_invoice_run_without_emails_still_renders_each_pdf(billed_org, time_machine, mailoutbox,
                                                             django_capture_on_commit_callbacks):
    time_machine.move_to(utc(2026, 11, 3), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("invoice_run", "--period", "2026-10", "--no-email", stdout=StringIO())
    assert Invoice.objects.get().pdf and mailoutbox == []


def test_invoice_run_refuses_no_pdf_without_no_email(billed_org, time_machine):
    """An email renders its PDF: skipping PDFs alone would skip nothing, and a backfill
    that meant to send nothing would email every customer."""
    time_machine.move_to(utc(2026, 11, 3), tick=False)
    with pytest.raises(CommandError, match="--no-pdf needs --no-email"):
        call_command("invoice_run", "--period", "2026-10", "--no-pdf")
    assert not Invoice.objects.exists()


def test_invoice_run_refuses_an_open_month_and_a_bad_period(time_machine):
    time_machine.move_to(utc(2026, 11, 3), tick=False)
    with pytest.raises(CommandError, match="has not closed yet"):
        call_command("invoice_run", "--period", "2026-11")
    with pytest.raises(CommandError, match="is not a month"):
        call_command("invoice_run", "--period", "October")


def test_invoice_preview_prints_the_interim_invoice(billed_org):
    out = StringIO()
    call_command("invoice_preview", "--org", str(billed_org.pk), "--until", "2026-10-06T00:00:00Z", stdout=out)
    text = out.getvalue()
    assert "Interim invoice · Acme · 2026-10-01 00:00 – 2026-10-06 00:00 UTC" in text
    assert "$120.00" in text and Invoice.objects.count() == 0


def test_invoice_preview_explains_bad_input(billed_org):
    with pytest.raises(CommandError, match="needs a time zone"):
        call_command("invoice_preview", "--org", str(billed_org.pk), "--until", "2026-10-06T00:00:00")
    with pytest.raises(CommandError, match="No organisation"):
        call_command("invoice_preview", "--org", "999999")
