"""Demo tax rates, a coupon, and issued invoices for last month. Idempotent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import timezone

from invoices import engine
from invoices.models import Coupon, TaxRate

TAX_RATES = [("NL", "BTW", "21"), ("DE", "MwSt.", "19"), ("FR", "TVA", "20"), ("GB", "VAT", "20"), ("IE", "VAT", "23")]


def seed(stdout=None) -> None:
    for country, name, rate in TAX_RATES:
        TaxRate.objects.get_or_create(country=country, valid_from=date(2020, 1, 1),
                                      defaults={"name": name, "rate": Decimal(rate)})
    Coupon.objects.get_or_create(code="welcome10", defaults={
        "name": "Welcome: 10% off for three months", "kind": "percent", "percent_off": Decimal("10"),
        "duration_periods": 3,
    })
    # Last month's invoices, from whatever usage the demo seeders before us recorded.
    run, todo = engine.invoice_run_start(now=timezone.now(), dispatch=False)
    issued = 0
    for org_id in todo:
        if engine.invoice_organization(run_id=run.pk, organization_id=org_id, render_pdf=False) == "invoiced":
            issued += 1
    if stdout:
        stdout.write(f"invoices: {len(TAX_RATES)} tax rates, 1 coupon, {issued} invoice(s) for {run.period_start:%B %Y}")
