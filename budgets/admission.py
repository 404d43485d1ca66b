"""Runway admission asks budgets too (settings.CREDITS_ADMISSION_CHECKS): a start is
refused while one of the organisation's budgets holds its hard cap this month, since the
next evaluation would hibernate what was just started."""

from __future__ import annotations

from datetime import datetime

from accounts.models import Organization
from budgets.models import Budget


def cap_reached(*, organization: Organization, now: datetime) -> tuple[str, str] | None:
    month = now.date().replace(day=1)
    held = (Budget.objects.filter(organization=organization, capped_at__isnull=False, capped_month=month)
            .values_list("name", "cap_amount").first())
    if held is None:
        return None
    name, cap = held
    return "budget_cap_reached", f"The budget \u201c{name}\u201d reached its hard cap of {cap} this month."
