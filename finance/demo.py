"""The demo's finance history, for the console's reports and the journal.

The other demo seeders write their money with today's time (the fleet starts this
month, last month's invoices are issued today). The reports would have one day to say
something about. `seed_history` adds three closed months before last month, dated when
each thing happened, through the services (with their `at=`/`now=`) where they take a
time, and as the rows those services write where they do not (a demo of the past cannot
wait for the past):

- usage of a few servers per organisation (legacy history through usage's importer, so
  the rollups the Usage report reads exist), drawn from the ledger day by day;
- Acme AI and TinyML Studio (prepaid, USD) top up each month by card; TinyML's second
  top-up first fails; Acme gets part of a top-up refunded;
- every organisation pays a monthly fee (IPv4 block) that moves: Acme expands, TinyML
  starts and churns, Nordlicht contracts; so MRR has movements;
- each month's invoice issued on the 1st at 02:00: prepaid statements draw the fee from
  credit, Nordlicht Render (postpaid, EUR, 19 % VAT) is billed with 30 days' terms:
  its first invoice is paid in part by bank transfer and the rest written off; the
  second's card charge fails and, in dunning, 70 % comes by bank transfer (recovered),
  the rest stays open; the third is open (aged);

then `seed` builds the journal up to the last settled day, so Customer credit held has
its figures. Deterministic (every amount follows from the calendar and the price book)
and idempotent: a second run finds its payments (`provider_payment_id` starting with
MARKER) and adds nothing. The months before last month are this module's; last month is
invoices' demo, whose fee lines come from the IPv4 addresses usage's demo fleet holds from
the start of last month (the last history month's count, so MRR runs on)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from finance.services import accounts_add_group_revenue

MARKER = "demo-finance-history"
MONTHS = 3  # closed months of history before last month
# (organisation, legacy resource, product, state, first day, hour, hours a month)
SERVERS = [
    ("acme-ai", "fin-acme-h100", "gpu-h100-8x", "running", 4, 9, 150),
    ("acme-ai", "fin-acme-web", "cpu-16-64", "running", 1, 0, None),
    ("tinyml", "fin-tiny-l40s", "gpu-l40s-1x", "running", 10, 8, 60),
    ("nordlicht", "fin-nl-a100", "gpu-a100-8x", "running", 2, 6, 200),
    ("nordlicht", "fin-nl-l40s", "gpu-l40s-1x", "running", 12, 0, 300),
]
# Monthly fee (IPv4 addresses, 3.00 USD / 2.76 EUR each) per organisation for each history
# month, oldest first; the last month's count is what usage.demo's fleet holds from the
# start of last month (Acme 2, Nordlicht 1, TinyML none), so MRR runs on into last month.
FEES = {
    "acme-ai": [Decimal("3.00"), Decimal("3.00"), Decimal("6.00")],
    "tinyml": [Decimal("0"), Decimal("3.00"), Decimal("0")],
    "nordlicht": [Decimal("5.52"), Decimal("5.52"), Decimal("2.76")],
}
VAT = {"nordlicht": Decimal("19")}


def seed(stdout=None) -> None:
    """The demo's product groups get their revenue accounts (they are made after the
    chart's migration); then the history, and the journal up to the last settled day."""
    from finance.journal import journal_build

    created = accounts_add_group_revenue()
    seed_history(stdout=stdout)
    built = journal_build(now=timezone.now())
    if stdout is not None:
        stdout.write(f"finance: {len(created)} revenue account(s) for product groups, "
                     f"{len(built)} journal day(s) built")


def history_months(now: datetime) -> list[tuple[datetime, datetime]]:
    """The closed months of history, oldest first: the MONTHS before last month."""
    from pricing.proration import month_start

    months = []
    end = month_start(month_start(now) - timedelta(days=1))  # last month's first day
    for _ in range(MONTHS):
        start = month_start(end - timedelta(days=1))
        months.append((start, end))
        end = start
    return months[::-1]


def seed_history(stdout=None) -> None:
    from accounts.models import Organization
    from payments.models import Payment

    # seed_demo runs each seeder in one transaction: the history is there whole or not at all.
    if Payment.objects.filter(provider_payment_id__startswith=MARKER).exists():
        if stdout is not None:
            stdout.write("finance: demo history already there")
        return
    orgs = {o.slug: o for o in Organization.objects.filter(slug__in=FEES)}
    if len(orgs) != len(FEES):
        return
    months = history_months(timezone.now())
    _usage(orgs, months)
    invoices = {}
    paid = {"acme-ai": Decimal(0), "tinyml": Decimal(0)}
    for n, (start, end) in enumerate(months):
        for slug in paid:
            paid[slug] = _topup(orgs[slug], n, start, end, paid[slug])
        for slug, org in orgs.items():
            invoices[(slug, n)] = _invoice(org, n, start, end)
    _collect(orgs, invoices, months)
    if stdout is not None:
        stdout.write(f"finance: {len(months)} months of history, {len(invoices)} invoices")


def _usage(orgs, months) -> None:
    """Servers' usage through usage's importer, rolled up; the ledger draws each
    organisation's day as one entry at 23:00, as metering's sync would have."""
    from credits.services import ledger_post
    from pricing.models import Product
    from pricing.resolver import NoPrice, resolve_price
    from usage import rollups
    from usage.imports import usage_import
    from usage.models import UsageDaily

    rows = []
    for start, end in months:
        for n, (slug, resource, code, state, day, hour, hours) in enumerate(SERVERS):
            product = Product.objects.filter(code=code).first()
            if product is None:
                continue
            t0 = start.replace(day=day, hour=hour)
            t1 = end if hours is None else min(end, t0 + timedelta(hours=hours))
            try:
                price = resolve_price(organization=orgs[slug], product=product, state=state, at=t0)
            except NoPrice:
                continue
            held = Decimal(int((t1 - t0).total_seconds()) // 60) / 60
            rows.append({"id": f"{start:%Y-%m}-{n}", "organization": str(orgs[slug].pk), "resource": resource,
                         "product": code, "state": state, "start": t0.isoformat(), "end": t1.isoformat(),
                         "amount": str((price.amount * held).quantize(Decimal("0.000001"))),
                         "currency": price.currency})
    usage_import(rows=rows, source=MARKER)
    rollups.rollup_pending()
    by_org = {o.pk: o for o in orgs.values()}
    days: dict[tuple[int, object], Decimal] = defaultdict(Decimal)
    for org_id, day, amount in UsageDaily.objects.filter(
            organization_id__in=by_org, day__gte=months[0][0].date(), day__lt=months[-1][1].date(),
            resource__external_id__startswith="fin-").values_list("organization_id", "day", "amount"):
        days[(org_id, day)] += amount
    for (org_id, day), amount in sorted(days.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        at = datetime.combine(day, datetime.min.time(), tzinfo=months[0][0].tzinfo).replace(hour=23)
        ledger_post(organization=by_org[org_id], amount=-amount, kind="usage", reason="Usage (demo history)",
                    reference=f"{MARKER}:usage:{org_id}:{day}", at=at)


def _month_usage(org, start, end) -> dict[int, Decimal]:
    from usage.models import UsageDaily

    totals: dict[int, Decimal] = defaultdict(Decimal)
    for product_id, amount in UsageDaily.objects.filter(
            organization=org, day__gte=start.date(), day__lt=end.date(),
            resource__external_id__startswith="fin-").values_list("product_id", "amount"):
        totals[product_id] += amount
    return totals


def _payment(org, *, purpose, provider, amount, status, at, invoice=None, dunning_case=None, attempt=None):
    from payments.models import Payment, PaymentStatus

    fields = {"succeeded_at": at} if status == PaymentStatus.SUCCEEDED else {
        "failed_at": at, "failure_code": "card_declined", "failure_message": "Your card was declined."}
    payment = Payment.objects.create(organization=org, purpose=purpose, provider=provider, amount=amount,
                                     currency=org.currency, status=status, invoice=invoice, dunning_case=dunning_case,
                                     dunning_attempt=attempt, **fields)
    Payment.objects.filter(pk=payment.pk).update(created_at=at)
    payment.provider_payment_id = f"{MARKER}:{payment.pk}"
    payment.save(update_fields=["provider_payment_id"])
    return payment


def _topup(org, n: int, start: datetime, end: datetime, paid: Decimal) -> Decimal:
    """The month's card top-up, on the 2nd: its usage and fee (and, in the last month, the
    refund to come) rounded up to ten; the last month's tops up what the history spent
    (to the cent), so it leaves today's demo balance as credits' demo set it. TinyML's second
    month's first attempt is declined. Returns what was topped up so far."""
    from credits.services import ledger_post
    from payments.models import PaymentStatus, Provider, Purpose

    refund = Decimal("50.00") if org.slug == "acme-ai" and n == MONTHS - 1 else Decimal(0)
    if n < MONTHS - 1:
        need = sum(_month_usage(org, start, end).values(), Decimal(0)) + FEES[org.slug][n]
        amount = ((need / 10).to_integral_value(rounding="ROUND_CEILING") * 10).quantize(Decimal("0.01"))
    else:
        spent = sum((sum(_month_usage(org, s, e).values(), Decimal(0)) + FEES[org.slug][k]
                     for k, (s, e) in enumerate(history_months(timezone.now()))), Decimal(0))
        # In whole cents, as any payment: the history leaves the balance under half a cent off.
        amount = (spent + refund - paid).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    at = start.replace(day=2, hour=10)
    provider = Provider.STRIPE if org.slug == "acme-ai" else Provider.PAYPAL
    if org.slug == "tinyml" and n == 1:
        _payment(org, purpose=Purpose.TOPUP, provider=provider, amount=amount, status=PaymentStatus.FAILED, at=at)
        at = at + timedelta(hours=3)
    payment = _payment(org, purpose=Purpose.TOPUP, provider=provider, amount=amount,
                       status=PaymentStatus.SUCCEEDED, at=at)
    ledger_post(organization=org, amount=amount, kind="topup", reference=f"payment:{payment.pk}",
                reason="Card top-up (demo history)", at=at)
    if refund:
        from payments.models import Refund, RefundStatus

        when = end + timedelta(days=11, hours=15)
        row = Refund.objects.create(payment=payment, organization=org, amount=refund, currency=org.currency,
                                    reason="Customer asked for unused credit back", status=RefundStatus.SUCCEEDED,
                                    succeeded_at=when, provider_refund_id=f"{MARKER}:refund:{payment.pk}")
        ledger_post(organization=org, amount=-refund, kind="refund", reference=f"refund:{row.pk}",
                    reason="Refund of unused credit (demo history)", at=when)
    return paid + amount


def _invoice(org, n: int, start: datetime, end: datetime):
    """The month's invoice, issued on the 1st at 02:00 as the scheduled engine does:
    a line per product of the month's usage (drawn by metering already) and the fee."""
    from core.money import round_money
    from invoices import services as invoice_services
    from invoices.models import LineKind
    from invoices.pipeline import SCHEDULED, Bill, BillingContext, Line
    from pricing.models import Product

    issued = end + timedelta(hours=2)
    rate = VAT.get(org.slug, Decimal(0))
    bill = Bill(organization=org, currency=org.currency)
    products = {p.pk: p for p in Product.objects.all()}
    for product_id, amount in sorted(_month_usage(org, start, end).items()):
        amount = round_money(amount, org.currency)
        product = products[product_id]
        bill.add(Line(kind=LineKind.USAGE, description=f"{product.name}", amount=amount, quantity=Decimal(1),
                      unit="month", unit_price=amount, product_code=product.code, product_id=product_id,
                      settled_by_metering=True, tax_rate=rate,
                      tax_amount=round_money(amount * rate / 100, org.currency)))
    fee = FEES[org.slug][n]
    ipv4 = Product.objects.filter(code="ipv4").first()
    if fee:
        bill.add(Line(kind=LineKind.RECURRING, description="IPv4 address monthly fee", amount=fee,
                      quantity=Decimal(1), unit="month", unit_price=fee, product_code="ipv4",
                      product_id=ipv4.pk if ipv4 else None, service_start=start, service_end=end, tax_rate=rate,
                      tax_amount=round_money(fee * rate / 100, org.currency)))
    bill.subtotal = sum((ln.amount for ln in bill.lines), Decimal(0))
    bill.tax_total = sum((ln.tax_amount for ln in bill.lines), Decimal(0))
    bill.total = bill.subtotal + bill.tax_total
    settled = sum((ln.amount for ln in bill.lines if ln.settled_by_metering), Decimal(0))
    # Prepaid: the fee is drawn from credit, nothing is left to pay; postpaid: all of it.
    bill.amount_due = Decimal(0) if org.billing_mode == "prepaid" else bill.total
    if org.billing_mode == "prepaid":
        bill.credit_applied = bill.total - settled
        bill.is_statement = True
    else:
        bill.due_at = issued + timedelta(days=org.payment_terms_days or 30)
    ctx = BillingContext(mode=SCHEDULED, period_start=start, period_end=end, span_start=start, span_end=end,
                         organization_ids=[org.pk], now=issued)
    draft = invoice_services.invoice_store_draft(bill=bill, ctx=ctx)
    if draft is None:
        return None
    return invoice_services.invoice_finalize(invoice=draft, render_pdf=False, now=issued)


def _record_payment(invoice, amount: Decimal, reference: str, at: datetime) -> None:
    """What `invoice_record_payment` writes, dated when the money came (it dates its
    ledger entry now)."""
    from credits.services import ledger_post
    from invoices.models import InvoicePayment
    from invoices.services.lifecycle import LEDGER_KIND, _settle

    payment = InvoicePayment.objects.create(invoice=invoice, amount=amount, currency=invoice.currency,
                                            reference=reference, received_at=at)
    invoice.amount_paid += amount
    if invoice.amount_paid == invoice.amount_due:
        _settle(invoice, at)
    invoice.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])
    ledger_post(organization=invoice.organization, amount=amount, kind=LEDGER_KIND,
                reference=f"invoice_payment:{payment.pk}", reason=f"Payment of {invoice.number}", at=at)


def _collect(orgs, invoices, months) -> None:
    """Nordlicht's invoices: the first is paid in part by bank transfer and the rest
    written off a month and a half later; the second's card charge fails on the due date
    and, in dunning, the customer pays 70 % by bank transfer (recovered), the rest still
    open (31–60 days); the third is open (due on the 1st of this month)."""
    from accounts.models import AuditLog
    from invoices.services.lifecycle import invoice_mark_uncollectible
    from payments.models import DunningCase, DunningStatus, PaymentStatus, Provider, Purpose

    org = orgs["nordlicht"]
    first, second = invoices[("nordlicht", 0)], invoices[("nordlicht", 1)]
    if first is not None:
        part = (first.amount_due * Decimal("0.8")).quantize(Decimal("0.01"))
        at = first.issued_at + timedelta(days=25, hours=9)
        payment = _payment(org, purpose=Purpose.INVOICE, provider=Provider.MANUAL, amount=part,
                           status=PaymentStatus.SUCCEEDED, at=at, invoice=first)
        _record_payment(first, part, f"payment:{payment.pk}", at)
        first.refresh_from_db()
        invoice_mark_uncollectible(invoice=first, reason="Disputed remainder, settled by agreement (demo data)")
        written = months[-1][1] + timedelta(days=9, hours=14)
        AuditLog.objects.filter(action="invoice.marked_uncollectible", object_id=str(first.pk)).update(
            created_at=written)
    if second is not None:
        due = second.due_at or second.issued_at + timedelta(days=30)
        # Left active with no retry scheduled: dunning's task leaves it alone.
        case = DunningCase.objects.create(organization=org, invoice=second, status=DunningStatus.ACTIVE,
                                          retries_done=0, first_failed_at=due, next_retry_at=None,
                                          last_failure="Your card was declined.")
        _payment(org, purpose=Purpose.INVOICE, provider=Provider.STRIPE, amount=second.amount_due,
                 status=PaymentStatus.FAILED, at=due, invoice=second, dunning_case=case, attempt=0)
        part = (second.amount_due * Decimal("0.7")).quantize(Decimal("0.01"))
        at = due + timedelta(days=3, hours=8)
        payment = _payment(org, purpose=Purpose.INVOICE, provider=Provider.MANUAL, amount=part,
                           status=PaymentStatus.SUCCEEDED, at=at, invoice=second, dunning_case=case)
        _record_payment(second, part, f"payment:{payment.pk}", at)
