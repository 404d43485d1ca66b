"""The dashboard card: balance, burn rate, runway and the latest warnings (prepaid), or
credit limit, usage to date and open invoices (postpaid)."""

from django.conf import settings

from accounts.scopes import ROLE_SCOPES
from credits.selectors import credit_summary
from usage.selectors import month_to_date_for_request


def credit_card(request, organization) -> dict | None:
    if "billing:read" not in ROLE_SCOPES[request.membership.role]:
        return None
    summary = credit_summary(organization=organization)
    if summary.postpaid is not None:
        return {"template": "credits/cards/postpaid.html", "summary": summary,
                "mtd": month_to_date_for_request(request, organization)}
    return {"template": "credits/cards/credit.html", "summary": summary, "topup_page": settings.CREDITS_TOPUP_PAGE,
            "can_topup": "billing:write" in ROLE_SCOPES[request.membership.role]}


def ladder_banner(request, organization) -> dict | None:
    """Across the top of the dashboard, for every member: the zero-balance ladder's dates
    (hibernated since, next notice, deletion scheduled on) while credit has run out."""
    from credits import ladder

    view = ladder.current(organization=organization)
    if view is None:
        return None
    return {"template": "credits/cards/ladder.html", "ladder": view, "topup_page": settings.CREDITS_TOPUP_PAGE,
            "can_topup": "billing:write" in ROLE_SCOPES[request.membership.role]}
