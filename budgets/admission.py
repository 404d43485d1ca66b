"""Runway admission asks budgets too (settings.CREDITS_ADMISSION_CHECKS): a start is
refused while a budget whose scope covers it holds its hard cap this month, since the
next evaluation would hibernate what was just started. An organisation budget covers
every start; a project budget covers the starts the platform says are in its project
(`project`, a slug: the `created` event's), so a start in another project, or in none,
is not refused by it."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from accounts.models import Organization
from budgets.models import Budget


def cap_reached(*, organization: Organization, now: datetime, project: str | None = None) -> tuple[str, str] | None:
    month = now.date().replace(day=1)
    scope = Q(project__isnull=True)
    if project:
        scope |= Q(project__slug=project)
    held = (Budget.objects.filter(scope, organization=organization, capped_at__isnull=False, capped_month=month)
            .order_by("project_id", "id").values_list("name", "cap_amount", "project__name").first())
    if held is None:
        return None
    name, cap, project_name = held
    where = "" if project_name is None else f" of the project \u201c{project_name}\u201d"
    return "budget_cap_reached", f"The budget \u201c{name}\u201d{where} reached its hard cap of {cap} this month."
