"""The demo's budgets: Acme AI's "Monthly cloud budget", set at about 85% used by the
demo's usage so far (50% and 80% alerts sent, the dashboard banner shown), and a budget
of its "ML research" project (usage.demo.PROJECTS) at about 60% used (its 50% alert
sent, naming the project); and a budget of its "Platform" project with a hard cap a
little under what the project has spent this month, so the cap has hibernated the
project's running server (web-frontend) through the provisioning outbox: raising the cap
on the Budgets page resumes it. Idempotent."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.utils import timezone

from accounts.models import Organization
from budgets import services
from budgets.models import Budget
from core.money import format_money

NAME = "Monthly cloud budget"
PROJECT = "ml-research"
PROJECT_NAME = "ML research GPUs"
CAPPED_PROJECT = "platform"
CAPPED_NAME = "Platform (hard cap)"


def seed(stdout=None) -> None:
    org = Organization.objects.filter(slug="acme-ai").first()
    if org is None:
        return
    _project_budget(org, stdout)
    _capped_budget(org, stdout)
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


def _capped_budget(org: Organization, stdout) -> None:
    """The Platform project's budget, capped at its spend so far rounded down to whole
    units (at least 1): the evaluation that follows reaches the cap and hibernates the
    project's running resources, as `budgets.evaluate` would have on its next pass."""
    from usage.models import Project

    project = Project.objects.filter(organization=org, slug=CAPPED_PROJECT).first()
    if project is None or Budget.objects.filter(organization=org, name=CAPPED_NAME).exists():
        return
    now = timezone.now()
    spent = services.figures(organization=org, now=now, projects=[project.pk]).projects[project.pk][0]
    cap = max(Decimal(1), spent.quantize(Decimal(1), rounding=ROUND_FLOOR))
    services.budget_create(organization=org, project=project, name=CAPPED_NAME, amount=cap, cap_amount=cap,
                           recipient_emails=["platform-lead@acme.example"])
    services.evaluate_organization(organization=org, now=now)
    budget = Budget.objects.get(organization=org, name=CAPPED_NAME)
    if stdout is not None:
        stdout.write(f"  budgets: Acme AI's project {project.name} capped at {format_money(cap, org.currency)}, "
                     f"{len(budget.capped_resources)} resource(s) hibernated")
