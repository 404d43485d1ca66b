"""The dashboard banner: budgets whose thresholds were crossed this month, or capped."""

from typing import Any

from django.utils import timezone

from accounts.models import Organization
from accounts.scopes import ROLE_SCOPES
from budgets.models import Budget
from pricing.proration import month_start


def budget_card(request: Any, organization: Organization) -> dict | None:
    if "billing:read" not in ROLE_SCOPES[request.membership.role]:
        return None
    month = month_start(timezone.now()).date()
    crossed = [b for b in Budget.objects.filter(organization=organization, armed_month=month).select_related("project").order_by("id")
               if b.alerts_sent or b.capped_at]
    if not crossed:
        return None
    return {"template": "budgets/cards/budgets.html", "budgets": crossed}
