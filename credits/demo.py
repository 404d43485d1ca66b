"""Demo credit for `make run`: opening top-ups (before usage's demo history is metered), a
promotional grant, auto top-up for Acme AI, and a nearly empty TinyML Studio, so warnings
show at once and hibernation follows if the demo keeps running. Idempotent: every entry
carries a reference, so a second run adds nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import Organization
from credits import services
from credits.models import Balance, PromoGrant

OPENING = [
    # (org slug, amount, reference): enough for usage's demo history, TinyML left low.
    ("acme-ai", Decimal("5000.00"), "demo:opening-topup"),
    ("tinyml", Decimal("90.00"), "demo:opening-topup"),
]
# What Acme AI has left once the demo history is paid for: about five days of its fleet.
DEMO_HEALTHY_BALANCE = Decimal("3000.00")


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
    if stdout:
        stdout.write(f"credits: opening balances for {len(orgs)} organisations")


def seed_runway(stdout=None) -> None:
    """After usage's demo history: burn rates, runway and the warnings they call for."""
    from credits import runway

    acme = Organization.objects.filter(slug="acme-ai").first()
    if acme is not None:
        # The demo history (six days of an 8×H100 node among others) costs more than the
        # opening top-up: Acme starts the demo with a healthy balance, not hibernated.
        amount = (Balance.objects.filter(organization=acme, currency=acme.currency)
                  .values_list("amount", flat=True).first() or Decimal(0))
        if amount < DEMO_HEALTHY_BALANCE:
            services.credit_topup(organization=acme, amount=(DEMO_HEALTHY_BALANCE - amount).quantize(Decimal("0.01")),
                                  currency=acme.currency, reference="demo:cover-history",
                                  reason="Top-up covering the demo history (demo data)")
        services.auto_topup_configure(organization=acme, enabled=True, threshold=Decimal("200.00"),
                                      amount=Decimal("500.00"), monthly_cap=Decimal("2000.00"))
    runway.compute_burn_rates()
    sent = runway.send_warnings()
    if stdout:
        stdout.write(f"credits: burn rates computed, {sent} warning(s)")
