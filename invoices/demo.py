"""Demo tax rates, a coupon, and issued invoices for last month. Idempotent.

The demo fleet only starts this month, so last month's usage is loaded as legacy history
through usage's own importer (`usage.imports.usage_import`, skipped when already there),
priced from the demo price book; then the scheduled engine bills last month."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from invoices import engine
from invoices.models import Coupon, TaxRate
from invoices.pipeline import previous_month

TAX_RATES = [("NL", "BTW", "21"), ("DE", "MwSt.", "19"), ("FR", "TVA", "20"), ("GB", "VAT", "20"), ("IE", "VAT", "23")]

# (organisation, legacy resource id, product, state, from day/hour, to day/hour; None = month end)
HISTORY = [
    ("acme-ai", "legacy-acme-train-h100", "gpu-h100-8x", "running", (3, 9), (17, 18)),
    ("acme-ai", "legacy-acme-train-h100", "gpu-h100-8x", "hibernated", (17, 18), (24, 0)),
    ("acme-ai", "legacy-acme-web", "cpu-16-64", "running", (1, 0), None),
    ("acme-ai", "legacy-acme-ci", "cpu-2-4", "running", (6, 8), (21, 20)),
    ("nordlicht", "legacy-nl-render-a100", "gpu-a100-8x", "running", (1, 0), (28, 12)),
    ("nordlicht", "legacy-nl-preview", "gpu-l40s-1x", "running", (10, 0), None),
]


def _history(start: datetime, end: datetime) -> list[dict]:
    from accounts.models import Organization
    from pricing.models import Product
    from pricing.resolver import NoPrice, resolve_price

    rows = []
    for n, (slug, resource, code, state, since, until) in enumerate(HISTORY):
        org = Organization.objects.filter(slug=slug).first()
        product = Product.objects.filter(code=code).first()
        if org is None or product is None:
            continue
        t0 = start.replace(day=since[0], hour=since[1])
        t1 = end if until is None else start.replace(day=until[0], hour=until[1])
        try:
            price = resolve_price(organization=org, product=product, state=state, at=t0)
        except NoPrice:
            continue
        hours = Decimal(int((t1 - t0).total_seconds()) // 60) / 60
        rows.append({"id": f"{start:%Y-%m}-{n}", "organization": str(org.pk), "resource": resource, "product": code,
                     "state": state, "start": t0.isoformat(), "end": t1.isoformat(),
                     "amount": str((price.amount * hours).quantize(Decimal("0.000001"))), "currency": price.currency})
    return rows


def _draw_history(history: list[dict], start: datetime) -> None:
    """Imported history is not metered, so credits' sync never draws it: draw it from the
    ledger here, as the sync would have: per organisation and UTC day, dated at the end of
    that day (the last minute), so the revenue report and the journal recognise last
    month's usage in last month, on the days it was consumed. A prepaid customer's top-up
    for the month is dated its first day. Idempotent: a month with any draw (this one's
    per day, or an older demo's one for the month) is left alone."""
    from accounts.models import Organization
    from credits.models import LedgerEntry
    from credits.services import ledger_post

    month = f"demo-history:{start:%Y-%m}"
    per_day: dict[str, dict[date, Decimal]] = {}
    for row in history:
        t0, t1, amount = datetime.fromisoformat(row["start"]), datetime.fromisoformat(row["end"]), Decimal(row["amount"])
        minutes = int((t1 - t0).total_seconds()) // 60
        days = per_day.setdefault(row["organization"], {})
        left, t = amount, t0
        while t < t1:  # each UTC day's share by minutes; the last day takes what rounding left
            day_end = datetime.combine(t.date() + timedelta(days=1), datetime.min.time(), tzinfo=t.tzinfo)
            upto = min(day_end, t1)
            share = left if upto == t1 else (amount * (int((upto - t).total_seconds()) // 60) / minutes).quantize(
                Decimal("1e-12"))
            days[t.date()] = days.get(t.date(), Decimal(0)) + share
            left -= share
            t = upto
    for org in Organization.objects.filter(pk__in=[int(k) for k in per_day]):
        if LedgerEntry.objects.filter(organization=org, reference__startswith=month).exists():
            continue
        days = per_day[str(org.pk)]
        if org.billing_mode == "prepaid":
            # A prepaid customer bought that month's credit in that month: the history
            # leaves today's demo balance as credits' demo set it.
            ledger_post(organization=org, amount=sum(days.values(), Decimal(0)), kind="topup",
                        reason=f"Top-ups of {start:%B %Y} (demo data)", reference=f"demo-history-topup:{start:%Y-%m}",
                        at=start + timedelta(hours=1))
        for day, amount in sorted(days.items()):
            ledger_post(organization=org, amount=-amount, kind="usage", reason="Demo usage history",
                        reference=f"{month}:{day:%d}",
                        at=datetime.combine(day, datetime.min.time(), tzinfo=start.tzinfo) + timedelta(hours=23, minutes=59))


def seed(stdout=None) -> None:
    from usage import rollups
    from usage.imports import usage_import

    for country, name, rate in TAX_RATES:
        TaxRate.objects.get_or_create(country=country, valid_from=date(2020, 1, 1),
                                      defaults={"name": name, "rate": Decimal(rate)})
    Coupon.objects.get_or_create(code="welcome10", defaults={
        "name": "Welcome: 10% off for three months", "kind": "percent", "percent_off": Decimal("10"),
        "duration_periods": 3,
    })
    now = timezone.now()
    start, end = previous_month(now)
    history = _history(start, end)
    imported = usage_import(rows=history, source="demo-invoices")
    rollups.rollup_pending()
    _draw_history(history, start)
    run, todo = engine.invoice_run_start(now=now + timedelta(0), dispatch=False)
    issued = sum(
        status == "invoiced"
        for chunk in engine.chunks(todo)
        for status in engine.invoice_organizations(run_id=run.pk, organization_ids=chunk, render_pdf=True,
                                                    send_email=True).values()
    )
    if stdout:
        stdout.write(f"invoices: {len(TAX_RATES)} tax rates, 1 coupon, {imported.imported} history rows, "
                     f"{issued} new invoice(s) for {run.period_start:%B %Y}")
