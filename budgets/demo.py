"""The demo's budgets: Acme AI's "Monthly cloud budget", set at about 85% used by the
demo's usage so far (50% and 80% alerts sent, the dashboard banner shown), and a budget
of its "ML research" project (usage.demo.PROJECTS) at about 60% used (its 50% alert
sent, naming the project); no hard cap (the demo's servers keep running). Idempotent."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from django.utils import timezone

from accounts.models import Organization
from budgets import services
from budgets.models import Budget
from core.money import format_money

NAME = "Monthly cloud budget"
PROJECT = "ml-research"
PROJECT_NAME = "ML research GPUs"


def seed(stdout=None) -> None:
    org = Organization.objects.filter(slug="acme-ai").first()
    if org is None:
        return
    _project_budget(org, stdout)
    if Budget.objects.filter(organization=org, name=NAME).exists():
        return
    now = timezone.now()
    fig = services.figures(organization=org, now=now)
    amount = max(Decimal(100), (fig.actual / Decimal("0.85")).quantize(Decimal(1), rounding=ROUND_CEILING))
    services.budget_create(organization=org, name=NAME, amount=amount, recipient_emails=["finance@acme.example"])
    sent = services.evaluate_organization(organization=org, now=now, fig=fig)
    if stdout is not None:
        stdout.write(f"  budgets: Acme AI's {NAME} of {format_money(amount, org.currency)}, {sent} alert(s) sent")


def _project_budget(org: Organization, stdout) -> None:
    from usage.models import Project

    project = Project.objects.filter(organization=org, slug=PROJECT).first()
    if project is None or Budget.objects.filter(organization=org, name=PROJECT_NAME).exists():
        return
    now = timezone.now()
    spent = services.figures(organization=org, now=now, projects=[project.pk]).projects[project.pk][0]
    amount = max(Decimal(50), (spent / Decimal("0.6")).quantize(Decimal(1), rounding=ROUND_CEILING))
    services.budget_create(organization=org, project=project, name=PROJECT_NAME, amount=amount,
                           recipient_emails=["research-lead@acme.example"])
    sent = services.evaluate_organization(organization=org, now=now)
    if stdout is not None:
        stdout.write(f"  budgets: Acme AI's project {project.name}: {format_money(amount, org.currency)}, "
                     f"{sent} alert(s) sent")
