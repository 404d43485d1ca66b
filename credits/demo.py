"""Demo credit for `make run`: opening top-ups, a promotional grant, auto top-up for Acme AI,
and a nearly empty TinyML Studio, so warnings and hibernation show once metering runs.
Idempotent: every entry carries a reference, so a second run adds nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import Organization
from credits import services
from credits.models import PromoGrant

OPENING = [
    # (org slug, amount, reference)
    ("acme-ai", Decimal("1500.00"), "demo:opening-topup"),
    ("tinyml", Decimal("25.00"), "demo:opening-topup"),
]


def seed(stdout=None) -> None:
    orgs = {o.slug: o for o in Organization.objects.filter(slug__in=["acme-ai", "tinyml"])}
    for slug, amount, reference in OPENING:
        if slug in orgs:
            services.credit_topup(organization=orgs[slug], amount=amount, currency=orgs[slug].currency,
                                  reference=reference, reason="Opening top-up (demo data)")
    acme = orgs.get("acme-ai")
    if acme is not None:
        if not PromoGrant.objects.filter(organization=acme, reason="Launch promotion (demo data)").exists():
            services.promo_grant(organization=acme, amount=Decimal("100.00"), reason="Launch promotion (demo data)",
                                 expires_at=timezone.now() + timedelta(days=30))
        services.auto_topup_configure(organization=acme, enabled=True, threshold=Decimal("200.00"),
                                      amount=Decimal("500.00"), monthly_cap=Decimal("2000.00"))
    if stdout:
        stdout.write(f"credits: opening balances for {len(orgs)} organisations")
