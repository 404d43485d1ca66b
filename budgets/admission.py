"""Runway admission asks budgets too (settings.CREDITS_ADMISSION_CHECKS): a start is
refused while a budget whose scope covers it holds its hard cap this month, since the
next evaluation would hibernate what was just started. An organisation budget covers
every start; a project budget covers the starts the platform says are in its project
(`project`, a slug: the `created` event's), so a start in another project, or in none,
is not refused by it."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from accounts.models import Organization

_HELD_SQL = """
SELECT b.name, b.cap_amount, p.name FROM budgets_budget b LEFT JOIN usage_project p ON p.id = b.project_id
WHERE b.organization_id = %(org)s AND b.capped_at IS NOT NULL AND b.capped_month = %(month)s
  AND (b.project_id IS NULL OR p.slug = %(project)s)
ORDER BY b.project_id, b.id LIMIT 1
"""


def cap_reached(*, organization: Organization, now: datetime, project: str | None = None) -> tuple[str, str] | None:
    month = now.date().replace(day=1)
    # Bare SQL: asked on every admission request, where the ORM's compiling cost more
    # than the query (the same filter: budgets of the organisation, or of the project).
    with connection.cursor() as cursor:
        cursor.execute(_HELD_SQL, {"org": organization.pk, "month": month, "project": project or None})
        held = cursor.fetchone()
    if held is None:
        return None
    name, cap, project_name = held
    where = "" if project_name is None else f" of the project \u201c{project_name}\u201d"
    return "budget_cap_reached", f"The budget \u201c{name}\u201d{where} reached its hard cap of {cap} this month."
