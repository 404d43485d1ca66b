"""The dashboard card: balance, burn rate, runway and the latest warnings."""

from accounts.scopes import ROLE_SCOPES
from credits.selectors import credit_summary


def credit_card(request, organization) -> dict | None:
    if "billing:read" not in ROLE_SCOPES[request.membership.role]:
        return None
    return {"template": "credits/cards/credit.html", "summary": credit_summary(organization=organization)}
