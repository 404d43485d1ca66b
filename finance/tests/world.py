"""The small world the journal tests share (its story is in test_journal.py's docstring)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import BillingMode
from accounts.tests.factories import OrganizationFactory
from credits.services import credit_topup, ledger_post
from credits.services.promo import promo_expire, promo_grant
from finance.models import Account, AccountRole
from invoices import services as invoice_services
from invoices.models import LineKind
from invoices.pipeline import SCHEDULED, Bill, BillingContext, Line, month_bounds
from invoices.services.credit_notes import LineCredit
from payments.models import PaymentStatus, Provider, Purpose, Refund, RefundStatus
from payments.tests.factories import PaymentFactory
from pricing.models import Product, ProductGroup

D = Decimal
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # 2 Dec has closed and settled


def at(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def _invoice(org, lines: list[Line], *, issued: datetime):
    start, end = month_bounds(2026, 11)
    bill = Bill(organization=org, currency="EUR")
    for line in lines:
        bill.add(line)
    bill.subtotal = sum((ln.amount for ln in bill.lines), D(0))
    bill.tax_total = sum((ln.tax_amount for ln in bill.lines), D(0))
    bill.total = bill.amount_due = bill.subtotal + bill.tax_total
    ctx = BillingContext(mode=SCHEDULED, period_start=start, period_end=end, span_start=start, span_end=end,
                         organization_ids=[org.pk], now=issued)
    draft = invoice_services.invoice_store_draft(bill=bill, ctx=ctx)
    return invoice_services.invoice_finalize(invoice=draft, render_pdf=False, now=issued)


@pytest.fixture
def world(db, time_machine):
    group = ProductGroup.objects.create(slug="gpu-servers", name="GPU servers")
    Account.objects.create(number="8201", name="Revenue GPU servers", type="income", role=AccountRole.REVENUE,
                           product_group=group)
    gpu = Product.objects.create(group=group, code="gpu-a100", name="A100")
    a = OrganizationFactory(name="A", currency="EUR", country="DE", billing_mode=BillingMode.PREPAID)
    b = OrganizationFactory(name="B", currency="EUR", country="DE", billing_mode=BillingMode.POSTPAID)

    def usage(org, amount: str, when: datetime) -> None:
        ledger_post(organization=org, amount=D(amount), kind="usage", reason="Usage", at=when)

    time_machine.move_to(at(2, 9), tick=False)
    topup = PaymentFactory(organization=a, purpose=Purpose.TOPUP, provider=Provider.SANDBOX,
                           status=PaymentStatus.SUCCEEDED, amount=D("100.00"), succeeded_at=at(2, 9))
    credit_topup(organization=a, amount=D("100.00"), currency="EUR", reference=f"payment:{topup.pk}")
    for hour in (10, 11, 12):
        usage(a, "-0.333333333333", at(2, hour))
    usage(b, "-12.345678901234", at(2, 13))
    usage(a, "-0.004", at(3, 10))
    usage(a, "-0.002", at(4, 10))
    time_machine.move_to(at(4, 12), tick=False)
    grant = promo_grant(organization=a, amount=D("5.00"), expires_at=at(6, 0), reason="Welcome credit")
    usage(a, "-2.50", at(5, 10))
    time_machine.move_to(at(6, 1), tick=False)
    promo_expire(grant_id=grant.pk)

    statement = _invoice(a, [Line(kind=LineKind.USAGE, description="A100", amount=D("3.51"), quantity=D(1),
                                  unit="hour", unit_price=D("3.51"), product_id=gpu.pk, settled_by_metering=True)],
                         issued=at(1, 2, month=12))
    invoice = _invoice(b, [
        Line(kind=LineKind.USAGE, description="A100", amount=D("12.35"), quantity=D(1), unit="hour",
             unit_price=D("12.35"), product_id=gpu.pk, settled_by_metering=True, tax_rate=D(19), tax_amount=D("2.35")),
        Line(kind=LineKind.RECURRING, description="Support plan", amount=D("20.00"), quantity=D(1), unit="month",
             unit_price=D("20.00"), tax_rate=D(19), tax_amount=D("3.80")),
    ], issued=at(1, 2, month=12))
    time_machine.move_to(at(1, 15, month=12), tick=False)
    note = invoice_services.credit_note_create(invoice=invoice, reason="Support plan started late",
                                               lines=[LineCredit(position=2, amount=D("10.00"))], send=False)

    time_machine.move_to(at(2, 10, month=12), tick=False)
    paid = PaymentFactory(organization=b, purpose=Purpose.INVOICE, invoice=invoice, provider=Provider.STRIPE,
                          status=PaymentStatus.SUCCEEDED, amount=D("20.00"), succeeded_at=at(2, 10, month=12))
    invoice_services.invoice_record_payment(invoice=invoice, amount=D("20.00"), reference=f"payment:{paid.pk}")
    refund = Refund.objects.create(payment=topup, organization=a, amount=D("5.00"), currency="EUR", reason="asked",
                                   status=RefundStatus.SUCCEEDED, succeeded_at=at(2, 11, month=12))
    ledger_post(organization=a, amount=D("-5.00"), kind="refund", reason="Refund", reference=f"refund:{refund.pk}")
    Refund.objects.create(payment=topup, organization=a, amount=D("7.00"), currency="EUR", reason="asked again",
                          status=RefundStatus.FAILED)
    Refund.objects.create(payment=topup, organization=a, amount=D("3.00"), currency="EUR", reason="still pending",
                          status=RefundStatus.PENDING)
    invoice_services.invoice_mark_uncollectible(invoice=invoice, reason="Customer unreachable")
    time_machine.move_to(NOW, tick=False)
    return {"a": a, "b": b, "statement": statement, "invoice": invoice, "note": note, "topup": topup,
            "paid": paid, "refund": refund}


