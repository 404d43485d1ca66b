"""The demo's budget: Acme AI's "Monthly cloud budget", set at about 85% used by the
demo's usage so far (50% and 80% alerts sent, the dashboard banner shown), no hard cap
(the demo's servers keep running). Idempotent."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from django.utils import timezone

from accounts.models import Organization
from budgets import services
from budgets.models import Budget
from core.money import format_money

NAME = "Monthly cloud budget"


def seed(stdout=None) -> None:
    org = Organization.objects.filter(slug="acme-ai").first()
    if org is None or Budget.objects.filter(organization=org, name=NAME).exists():
        return
    now = timezone.now()
    fig = services.figures(organization=org, now=now)
    amount = max(Decimal(100), (fig.actual / Decimal("0.85")).quantize(Decimal(1), rounding=ROUND_CEILING))
    services.budget_create(organization=org, name=NAME, amount=amount, recipient_emails=["finance@acme.example"])
    sent = services.evaluate_organization(organization=org, now=now, fig=fig)
    if stdout is not None:
        stdout.write(f"  budgets: Acme AI's {NAME} of {format_money(amount, org.currency)}, {sent} alert(s) sent")
