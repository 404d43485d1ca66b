"""Invoices for tests: built the way the engine builds them (a stored draft, then
finalized through the service), never by writing issued rows directly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from accounts.models import BillingMode, Organization
from accounts.tests.tenancy import tenant_factory
from invoices import services
from invoices.models import CreditNote, Invoice, LineKind
from invoices.pipeline import SCHEDULED, Bill, BillingContext, Line, month_bounds


def make_bill(org: Organization, amounts: list[str], *, group: str = "web-1") -> Bill:
    bill = Bill(organization=org, currency=org.currency)
    for i, amount in enumerate(amounts):
        bill.add(Line(kind=LineKind.USAGE, group=group, description=f"Server {i}", amount=Decimal(amount),
                      quantity=Decimal(1), unit="hour", unit_price=Decimal(amount)))
    bill.subtotal = bill.total = bill.amount_due = sum((ln.amount for ln in bill.lines), Decimal(0))
    return bill


def make_invoice(org: Organization, *, amounts=("100.00",), year=2026, month=9, finalize=True,
                 now: datetime | None = None) -> Invoice:
    start, end = month_bounds(year, month)
    ctx = BillingContext(mode=SCHEDULED, period_start=start, period_end=end, span_start=start, span_end=end,
                         organization_ids=[org.pk], now=now or end)
    invoice = services.invoice_store_draft(bill=make_bill(org, list(amounts)), ctx=ctx)
    if finalize:
        invoice = services.invoice_finalize(invoice=invoice, render_pdf=False, now=now or datetime(year, month, 28, tzinfo=UTC))
    return invoice


@tenant_factory(Invoice)
def make_tenant_invoice(organization: Organization) -> Invoice:
    if organization.billing_mode != BillingMode.POSTPAID:
        Organization.objects.filter(pk=organization.pk).update(billing_mode=BillingMode.POSTPAID)
        organization.refresh_from_db()
    return make_invoice(organization)


@tenant_factory(CreditNote)
def make_tenant_credit_note(organization: Organization) -> CreditNote:
    """A credit note of everything left on a fresh invoice of a month of 2025 the
    organisation has no invoice for yet."""
    if organization.billing_mode != BillingMode.POSTPAID:
        Organization.objects.filter(pk=organization.pk).update(billing_mode=BillingMode.POSTPAID)
        organization.refresh_from_db()
    taken = {d.month for d in Invoice.objects.filter(organization=organization, period_start__year=2025)
             .values_list("period_start", flat=True)}
    month = min(set(range(1, 13)) - taken)
    invoice = make_invoice(organization, year=2025, month=month, amounts=("40.00", "2.50"))
    return services.credit_note_create(invoice=invoice, reason="test", send=False)
