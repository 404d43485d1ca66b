"""A monthly budget and the alerts it sent.

Scope: a budget covers its whole organisation (`scope = "organization"`, no project) or
one of its projects (`scope = "project"` and `project`, of the same organisation); the
evaluation's spend and the hard cap's resources are then that project's (see
docs/budgets.md, "Project budgets").
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db import models

from accounts.models import Organization


class BudgetScope(models.TextChoices):
    ORGANIZATION = "organization", "Whole organisation"
    PROJECT = "project", "One project"


class AlertKind(models.TextChoices):
    ACTUAL = "actual", "Actual"
    FORECAST = "forecast", "Forecast"


DEFAULT_ACTUAL = [50, 80, 100]
DEFAULT_FORECAST = [100]
DEFAULT_ROLES = ["owner", "billing"]


def _default_actual() -> list[int]:
    return list(DEFAULT_ACTUAL)


def _default_forecast() -> list[int]:
    return list(DEFAULT_FORECAST)


def _default_roles() -> list[str]:
    return list(DEFAULT_ROLES)


class Budget(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="budgets")
    scope = models.CharField(max_length=20, choices=BudgetScope.choices, default=BudgetScope.ORGANIZATION)
    # Scope "project": the project (of the same organisation, budgets.services checks it),
    # set at creation and never changed; null for the whole organisation.
    project = models.ForeignKey("usage.Project", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="budgets")
    name = models.CharField(max_length=100)
    # A monthly amount in the organisation's currency (copied, so a row says what it means).
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    actual_thresholds = ArrayField(models.PositiveSmallIntegerField(), default=_default_actual, blank=True)
    forecast_thresholds = ArrayField(models.PositiveSmallIntegerField(), default=_default_forecast, blank=True)
    recipient_roles = ArrayField(models.CharField(max_length=20), default=_default_roles, blank=True)
    recipient_emails = ArrayField(models.EmailField(), default=list, blank=True)
    # Hard cap: when the month's actual spend reaches it, running resources hibernate.
    cap_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    # Evaluation state (budgets.evaluate): the month the sent keys belong to, the keys
    # ("actual:80", "forecast:100") sent in it, the last figures.
    armed_month = models.DateField(null=True, blank=True)
    alerts_sent = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    actual = models.DecimalField(max_digits=24, decimal_places=12, null=True, blank=True)
    forecast = models.DecimalField(max_digits=24, decimal_places=12, null=True, blank=True)
    as_of = models.DateTimeField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # Hard cap state: set in the transaction that hibernated; cleared by the resume.
    capped_at = models.DateTimeField(null=True, blank=True)
    capped_month = models.DateField(null=True, blank=True)
    capped_resources = ArrayField(models.BigIntegerField(), default=list, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="budgets_budget_amount_positive"),
            models.CheckConstraint(condition=models.Q(cap_amount__isnull=True) | models.Q(cap_amount__gt=0),
                                   name="budgets_budget_cap_positive"),
            models.CheckConstraint(
                condition=(models.Q(scope=BudgetScope.ORGANIZATION, project__isnull=True)
                           | models.Q(scope=BudgetScope.PROJECT, project__isnull=False)),
                name="budgets_budget_scope_project"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.organization_id})"

    @property
    def scope_label(self) -> str:
        """Whole organisation, or Project “Training”: for pages and the console."""
        if self.project is None:
            return "Whole organisation"
        return f"Project \u201c{self.project.name}\u201d"

    @property
    def percent_used(self) -> Decimal:
        if self.actual is None:
            return Decimal(0)
        return (self.actual / self.amount * 100).quantize(Decimal("0.1"))

    @property
    def alerts_sent_labels(self) -> list[str]:
        """["50% actual", "100% forecast"]: the keys sent this month, in words."""
        keys = sorted((k.partition(":")[0], int(k.partition(":")[2])) for k in self.alerts_sent)
        return [f"{t}% {kind}" for kind, t in keys]

    @property
    def bar_percent(self) -> int:
        return int(min(self.percent_used, Decimal(100)))


class BudgetAlert(models.Model):
    """One alert sent: a threshold crossed, once per crossing."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    month = models.DateField()
    kind = models.CharField(max_length=10, choices=AlertKind.choices)
    threshold = models.PositiveSmallIntegerField()
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    spend = models.DecimalField(max_digits=24, decimal_places=12)
    recipients = ArrayField(models.EmailField(), default=list, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.threshold}% {self.kind} ({self.month:%Y-%m})"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.threshold}"
