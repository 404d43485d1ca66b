"""The console index's Reports module: every registered report, for staff who may read them."""

from __future__ import annotations

from typing import Any

from django import template

from finance.reports.registry import reports

register = template.Library()


@register.inclusion_tag("admin/finance/reports/_module.html", takes_context=True)
def finance_reports_module(context: dict[str, Any]) -> dict[str, Any]:
    from finance.views import PERMISSION

    request = context.get("request")
    user = getattr(request, "user", None)
    allowed = user is not None and user.is_authenticated and user.has_perm(PERMISSION)
    return {"reports": list(reports().values()) if allowed else []}
