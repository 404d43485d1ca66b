"""Demo payments for `make run`: sandbox cards and one paid top-up. Idempotent.

Only with the SANDBOX provider (no keys): with real providers, cards are saved through
their hosted pages by people."""

from __future__ import annotations

from decimal import Decimal

from accounts.models import Organization
from payments import services
from payments.gateways import card_provider
from payments.gateways.base import PaymentSnapshot, SavedMethod
from payments.models import Payment, PaymentMethod, PaymentStatus, Provider, Purpose

CARDS = {"acme-ai": "sbx_pm_demo_acme", "nordlicht": "sbx_pm_demo_nordlicht"}


def seed(stdout=None) -> None:
    if card_provider() != Provider.SANDBOX:
        if stdout:
            stdout.write("payments: real providers configured, no demo data")
        return
    orgs = {o.slug: o for o in Organization.objects.filter(slug__in=CARDS)}
    for slug, method_id in CARDS.items():
        if slug in orgs and not PaymentMethod.objects.filter(provider_method_id=method_id).exists():
            services.payment_method_save(organization=orgs[slug], provider=Provider.SANDBOX, saved=SavedMethod(
                provider_method_id=method_id, brand="Sandbox Visa", last4="4242", exp_month=12, exp_year=2030))
    acme = orgs.get("acme-ai")
    if acme is not None and not Payment.objects.filter(organization=acme, purpose=Purpose.TOPUP).exists():
        payment = services.payment_create(organization=acme, purpose=Purpose.TOPUP, provider=Provider.SANDBOX,
                                          amount=Decimal("100.00"))
        services.payment_apply_snapshot(payment_id=payment.pk, snapshot=PaymentSnapshot(
            status=PaymentStatus.SUCCEEDED, provider_payment_id=f"sbx_pay_{payment.pk}",
            amount=payment.amount, currency=payment.currency))
    if stdout:
        stdout.write(f"payments: sandbox cards for {len(orgs)} organisations, {Payment.objects.count()} payments")
