from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from accounts.tests.factories import OrganizationFactory
from accounts.tests.tenancy import tenant_factory
from payments.models import (
    Flow,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Provider,
    Purpose,
    Receipt,
    Refund,
    RefundStatus,
)

_invoice_numbers = itertools.count(1)


def make_open_invoice(organization, *, amount_due: Decimal = Decimal("120.00"), due_at: datetime | None = None,
                      period_start: datetime | None = None):
    """An issued (open) invoice as the invoices app leaves it after finalize: one line
    (totals are sums of lines; credit notes credit lines), then opened."""
    from invoices.models import Invoice, InvoiceLine, LineKind
    from invoices.services import billing_snapshot, seller_snapshot

    n = next(_invoice_numbers)
    start = period_start or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=31 * n)
    start = start.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    invoice = Invoice.objects.create(
        organization=organization, period_start=start, period_end=end, status="draft",
        currency=organization.currency, subtotal=amount_due, total=amount_due,
        amount_due=amount_due, due_at=due_at or end + timedelta(days=14),
    )
    InvoiceLine.objects.create(invoice=invoice, position=1, kind=LineKind.RECURRING, description="Monthly fee",
                               quantity=Decimal(1), unit_price=amount_due, amount=amount_due)
    invoice.status, invoice.number, invoice.issued_at = "open", f"TEST-{n:05d}", end
    invoice.billing_details, invoice.seller_details = billing_snapshot(organization), seller_snapshot()
    invoice.save()
    return invoice


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethod

    organization = factory.SubFactory(OrganizationFactory)
    provider = Provider.SANDBOX
    provider_method_id = factory.Sequence(lambda n: f"sbx_pm_{n:08d}")
    brand = "visa"
    last4 = "4242"
    exp_month = 12
    exp_year = 2030
    is_default = True


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    organization = factory.SubFactory(OrganizationFactory)
    purpose = Purpose.TOPUP
    provider = Provider.SANDBOX
    flow = Flow.CHECKOUT
    status = PaymentStatus.REQUIRES_ACTION
    amount = Decimal("50.00")
    currency = factory.LazyAttribute(lambda p: p.organization.currency)


@tenant_factory(Payment)
def make_payment(organization):
    return PaymentFactory(organization=organization, status=PaymentStatus.SUCCEEDED)


@tenant_factory(PaymentMethod)
def make_payment_method(organization):
    return PaymentMethodFactory(organization=organization)


@tenant_factory(Refund)
def make_refund(organization):
    payment = PaymentFactory(organization=organization, status=PaymentStatus.SUCCEEDED)
    return Refund.objects.create(payment=payment, organization=organization, amount=Decimal("5.00"),
                                 currency=payment.currency, reason="test", status=RefundStatus.SUCCEEDED)


def _register_invoice_factory() -> None:
    """The portal's pay-invoice page takes an invoice id; invoices registers its own
    factory, and this one stands in only if it has not."""
    from accounts.tests.tenancy import TENANT_FACTORIES
    from invoices.models import Invoice

    TENANT_FACTORIES.setdefault(Invoice, make_open_invoice)


_register_invoice_factory()


@tenant_factory(Receipt)
def make_receipt(organization):
    """A receipt as payments issues it: for a payment that succeeded."""
    from django.db import transaction

    from payments.receipts import receipt_issue

    payment = PaymentFactory(organization=organization, status=PaymentStatus.SUCCEEDED, purpose=Purpose.TOPUP,
                             invoice=None)
    with transaction.atomic():
        return receipt_issue(payment=payment)
