from django.shortcuts import render
from django.utils import timezone

from accounts.portal import portal_view
from pricing.models import STATE_ORDER_LABELS
from pricing.selectors import contract_in_force, price_sheet


@portal_view("account:read")
def index(request):
    """What this organisation pays now for everything we sell, its contract prices marked."""
    organization = request.membership.organization
    now = timezone.now()
    return render(request, "pricing/index.html", {
        "organization": organization,
        "now": now,
        "groups": price_sheet(organization=organization, at=now),
        "contract": contract_in_force(organization=organization, at=now),
        "states": STATE_ORDER_LABELS,
    })
