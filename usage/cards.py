from django.utils import timezone

from accounts.scopes import ROLE_SCOPES
from core.money import ZERO, format_rate
from usage.selectors import month_to_date_for_request, running_costs


def month_to_date_card(request, organization) -> dict | None:
    membership = getattr(request, "membership", None)
    if membership is None or "usage:read" not in ROLE_SCOPES[membership.role]:
        return None
    lines = running_costs(organization=organization, now=timezone.now())
    rate = sum((line.hourly_rate for line in lines if line.hourly_rate), ZERO)
    return {
        "template": "usage/cards/month_to_date.html",
        "mtd": month_to_date_for_request(request, organization),
        "rate": format_rate(rate, organization.currency),
        "running": sum(1 for line in lines if not line.addon and line.resource.state == "running"),
    }
