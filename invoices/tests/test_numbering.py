"""Numbers are sequential per series and year, without gaps, under concurrency."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from invoices import numbering, services
from invoices.models import Invoice
from invoices.tests.factories import make_invoice

NOW = datetime(2026, 10, 2, 2, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_a_rolled_back_finalization_consumes_no_number():
    org = OrganizationFactory(billing_mode=BillingMode.POSTPAID)
    first = make_invoice(org, month=7, now=NOW)
    draft = make_invoice(org, month=8, finalize=False)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.invoice_finalize(invoice=draft, render_pdf=False, now=NOW)
        raise RuntimeError("crash after numbering")
    draft.refresh_from_db()
    assert draft.number is None and draft.status == "draft"
    again = services.invoice_finalize(invoice=draft, render_pdf=False, now=NOW)
    assert (first.number, again.number) == ("INV-2026-000001", "INV-2026-000002")


@pytest.mark.django_db
def test_each_series_and_year_counts_on_its_own():
    with transaction.atomic():
        numbers = [numbering.next_number("INV", 2026), numbering.next_number("CN", 2026),
                   numbering.next_number("INV", 2027), numbering.next_number("INV", 2026)]
    assert numbers == ["INV-2026-000001", "CN-2026-000001", "INV-2027-000001", "INV-2026-000002"]


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_finalizations_get_consecutive_numbers():
    orgs = [OrganizationFactory(billing_mode=BillingMode.POSTPAID) for _ in range(20)]
    drafts = [make_invoice(org, finalize=False) for org in orgs]
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def finalize(invoice: Invoice) -> None:
        try:
            barrier.wait()
            services.invoice_finalize(invoice=invoice, render_pdf=False, now=NOW)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=finalize, args=(d,)) for d in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 21)]
