"""A small world for the browser tests: one organisation with something on every page.

`portal_world()` makes an owner of a prepaid organisation (a second membership, so the
organisation switcher shows) with a month of usage from three products, a server
running, ledger lines, a saved sandbox card, an issued invoice of several lines with
tax, a credit note, a paid payment with its receipt, a sandbox checkout waiting for the
customer and a Stripe charge waiting for the customer's confirmation. `objects` maps each
model a portal URL names (a view's `portal_model`) to the row the scan opens, so a page
added later with an object in its URL is scanned once its model is here.

Made through the apps' services and test factories, in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory


@dataclass
class World:
    org: Organization
    owner: User
    objects: dict[type, Any] = field(default_factory=dict)


# An invoice as a customer of a GPU cloud gets one: (group, description, quantity, unit, unit price).
INVOICE_LINES = [
    ("render-01", "GPU H100 × 8 · running", "76.5", "hour", "24.00"),
    ("render-01", "Block storage SSD · 2 TB", "1", "month", "96.75"),
    ("render-02", "CPU 16 vCPU · running", "459.4", "hour", "0.68"),
    ("render-02", "CPU 16 vCPU · stopped", "260.6", "hour", "0.05"),
]


def issued_invoice(org: Organization, *, year: int, month: int, tax_rate: str = "19",
                   lines: list[tuple[str, str, str, str, str]] = INVOICE_LINES):
    """An invoice of `lines` with tax (`tax_rate` in percent), stored as a draft and finalized
    through the service."""
    from datetime import UTC, datetime

    from invoices import services
    from invoices.models import LineKind
    from invoices.pipeline import SCHEDULED, Bill, BillingContext, Line, month_bounds

    bill = Bill(organization=org, currency=org.currency)
    rate = Decimal(tax_rate)
    for group, description, quantity, unit, unit_price in lines:
        line = bill.add(Line(kind=LineKind.USAGE, group=group, description=description, quantity=Decimal(quantity),
                             unit=unit, unit_price=Decimal(unit_price), amount=Decimal(quantity) * Decimal(unit_price),
                             tax_rate=rate))
        line.tax_amount = (line.amount * rate / 100).quantize(Decimal("0.01"))
    bill.subtotal = sum((ln.amount for ln in bill.lines), Decimal(0))
    bill.tax_total = sum((ln.tax_amount for ln in bill.lines), Decimal(0))
    bill.total = bill.amount_due = bill.subtotal + bill.tax_total
    start, end = month_bounds(year, month)
    ctx = BillingContext(mode=SCHEDULED, period_start=start, period_end=end, span_start=start, span_end=end,
                         organization_ids=[org.pk], now=end)
    invoice = services.invoice_store_draft(bill=bill, ctx=ctx)
    return services.invoice_finalize(invoice=invoice, render_pdf=False, now=datetime(year, month, 28, tzinfo=UTC))


def portal_world() -> World:
    from credits import services as credits
    from invoices.models import CreditNote, Invoice
    from invoices.services import credit_note_create
    from payments.models import Flow, Payment, PaymentMethod, PaymentStatus, Provider, Purpose, Receipt
    from payments.receipts import receipt_issue
    from payments.tests.factories import PaymentFactory, PaymentMethodFactory
    from pricing.models import ResourceState
    from pricing.tests.factories import ProductFactory
    from usage.models import Resource, UsageDaily
    from usage.tests.factories import ResourceFactory, add_price

    org = OrganizationFactory(name="Acme AI", legal_name="Acme AI GmbH", address_line1="Torstraße 140",
                              postal_code="10119", city="Berlin", country="DE", vat_id="DE811907980",
                              currency="EUR")
    owner = MembershipFactory(organization=org, role="owner",
                              user=UserFactory(email="ada@acme.example", full_name="Ada Lovelace")).user
    MembershipFactory(organization=OrganizationFactory(name="Nordlicht Render"), role="owner", user=owner)
    now = timezone.now()
    products = []
    for code, name, hourly in (("gpu-h100-8x", "GPU H100 × 8", "24.00"), ("cpu-16", "CPU 16 vCPU", "0.68"),
                               ("block-ssd", "Block storage SSD", "0.05")):
        products.append(ProductFactory(code=code, name=name))
        add_price(products[-1], hourly, valid_from=now - timedelta(days=400), currency=org.currency)
    servers = [ResourceFactory(organization=org, product=product, name=f"{product.code}-1",
                               state=ResourceState.RUNNING, state_since=now - timedelta(days=31))
               for product in products]
    UsageDaily.objects.bulk_create([
        UsageDaily(organization=org, resource=server, product=server.product, state=ResourceState.RUNNING,
                   currency=org.currency, minutes=1440, day=(now - timedelta(days=d)).date(),
                   amount=Decimal(amount) + Decimal(d % 5))
        for d in range(30) for server, amount in zip(servers, ("180.00", "24.50", "3.20"), strict=True)])
    with transaction.atomic():
        credits.ledger_post(organization=org, amount=Decimal("2500"), kind="adjustment", reason="Welcome credit")
    PaymentMethodFactory(organization=org)

    invoice = issued_invoice(org, year=now.year - 1, month=11)
    credit_note = credit_note_create(invoice=issued_invoice(org, year=now.year - 1, month=10, lines=INVOICE_LINES[2:]),
                                     reason="Outage credit", send=False)
    paid = PaymentFactory(organization=org, status=PaymentStatus.SUCCEEDED, purpose=Purpose.TOPUP,
                          amount=Decimal("250.00"))
    with transaction.atomic():
        receipt = receipt_issue(payment=paid)
    waiting_checkout = PaymentFactory(organization=org, status=PaymentStatus.REQUIRES_ACTION, amount=Decimal("100.00"))
    to_confirm = PaymentFactory(organization=org, status=PaymentStatus.REQUIRES_ACTION, provider=Provider.STRIPE,
                                flow=Flow.OFF_SESSION, amount=Decimal("500.00"),
                                payment_method=PaymentMethodFactory(organization=org, provider=Provider.STRIPE,
                                                                    is_default=False))
    from webhooks.models import WebhookDelivery, WebhookEndpoint
    from webhooks.tests.factories import make_attempted_delivery

    delivery = make_attempted_delivery(org)
    from budgets.models import Budget
    from budgets.tests.factories import make_budget

    budget = make_budget(org, name="Monthly cloud budget", amount=Decimal("1000.00"))
    return World(org=org, owner=owner, objects={
        Budget: budget,
        WebhookEndpoint: delivery.endpoint, WebhookDelivery: delivery,
        Invoice: invoice, CreditNote: credit_note, Payment: paid, Receipt: receipt, Resource: servers[0],
        PaymentMethod: PaymentMethod.objects.filter(organization=org, provider=Provider.SANDBOX).first(),
        # Pages that show a payment only in one state open these instead (by route name).
        "payments:sandbox_checkout": waiting_checkout, "payments:confirm": to_confirm,
    })
