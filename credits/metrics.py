"""credits' state for /metrics (core.metrics, METRICS_STATE_SOURCES): runway and top-ups."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, F, Min, Q
from django.utils import timezone

from accounts.models import BillingMode
from core.metrics import Sample
from credits.models import Balance, TopUp, TopUpStatus

RUNWAY_HOURS = 24
OPEN = (TopUpStatus.PENDING, TopUpStatus.FAILED)


def state() -> Iterator[Sample]:
    # Under 24 h: burning, and the balance is less than 24 hours of the burn rate (a
    # balance at or below zero that still burns included). Zero for a currency in use.
    short = Q(burn_rate_per_hour__gt=0, amount__lt=F("burn_rate_per_hour") * RUNWAY_HOURS)
    rows = (Balance.objects.filter(organization__billing_mode=BillingMode.PREPAID).values("currency")
            .annotate(n=Count("organization_id", filter=short, distinct=True)).order_by("currency"))
    for row in rows:
        yield Sample("cloudbill_organizations_low_runway", row["n"], {"currency": row["currency"]})

    open_ = {r["status"]: r for r in TopUp.objects.filter(status__in=OPEN).values("status")
             .annotate(n=Count("id"), oldest=Min("created_at")).order_by()}
    for status in OPEN:
        yield Sample("cloudbill_topups_open", open_[status]["n"] if status in open_ else 0, {"status": str(status)})
    oldest = min((r["oldest"] for r in open_.values()), default=None)
    age = int((timezone.now() - oldest).total_seconds()) if oldest else 0
    yield Sample("cloudbill_topup_oldest_open_age_seconds", max(age, 0))
