"""Budgets: create, change, delete, and the periodic evaluation.

- Figures: per organisation, once per pass whatever its number of budgets: *actual* is
  the one month-to-date figure (`usage.selectors.month_to_date`, the interim invoice's
  total) and *forecast* is actual plus what the running resources add to the month's
  end at their current rate (`usage.spend.forecast`: its forecast less its own
  month-to-date).
- Alerts: a key `actual:80` / `forecast:100` is sent once per crossing and kept in
  `Budget.alerts_sent` for `armed_month`. A new month re-arms every key; raising the
  amount re-arms the keys the new amount lifts the figure below. When one pass crosses
  several thresholds of one kind at once, one alert (the highest) speaks for them all.
  Each alert is a `BudgetAlert` row, a `budget.threshold_crossed` webhook event (same
  transaction, dedup key per alert) and an email after commit (core.outbox).
- Hard cap: actual at or above `cap_amount` hibernates the scope's running resources
  through credits' signed provisioning outbox (reason "Budget cap reached: …"), once:
  `capped_at`/`capped_month` in the same transaction; a pass while capped hibernates
  whatever was started since. Raising or removing the cap above the spend, or the month
  turning, resumes them; resources that credit hibernation holds meanwhile (the balance
  is hibernated) are handed to it instead of woken, and another capped budget of the
  organisation keeps them asleep.
- Locks: every change takes the organisation's budget rows in id order (then, to resume,
  the credit balance, as credits does: balance, then resources), so evaluation, the
  portal, the API and the console serialise per organisation and never deadlock.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Membership, Organization, User
from accounts.scopes import Role
from budgets.models import AlertKind, Budget, BudgetAlert, BudgetScope
from core.errors import DomainError
from core.money import ZERO, format_money, minor_unit_exponent, round_money
from pricing.proration import month_start

if TYPE_CHECKING:
    from usage.models import Project, Resource

logger = logging.getLogger(__name__)
SOURCE = "service"  # usage.models.StateSource.SERVICE
MAX_THRESHOLD = 1000
EDITABLE = ("name", "amount", "actual_thresholds", "forecast_thresholds", "recipient_roles", "recipient_emails",
            "cap_amount")


@dataclass(frozen=True)
class Figures:
    actual: Decimal
    forecast: Decimal
    as_of: datetime | None
    # Project budgets: {project id: (actual, forecast)}, only for the projects asked for.
    projects: dict[int, tuple[Decimal, Decimal]] = dataclasses.field(default_factory=dict)


def figures(*, organization: Organization, now: datetime, projects: Iterable[int] = ()) -> Figures:
    """The organisation's figures and, for each of `projects` (ids), that project's: its
    share of the month in the spend explorer's per-project breakdown (`usage.spend.spend`,
    grouped by project: the invoice lines' cents of its resources) and, for the forecast,
    what `usage.spend.forecast` adds to the month's end for its resources."""
    from usage.models import Project, Resource
    from usage.selectors import month_to_date
    from usage.spend import forecast, spend

    mtd = month_to_date(organization=organization, now=now)
    fc = forecast(organization=organization, now=now)
    actual = Decimal(mtd.total)
    wanted = set(projects)
    by_project: dict[int, tuple[Decimal, Decimal]] = {}
    if wanted:
        month = month_start(now)
        current = spend(organization=organization, start=month.date(), end=_month_end(month), interval="month",
                        group_by="project", now=now)
        slugs = dict(Project.objects.filter(organization=organization, pk__in=wanted).values_list("slug", "pk"))
        spent = {slugs[s.group.key]: s.total for s in current.series if s.group.key in slugs}
        # forecast()'s rows are per resource, keyed by external id (unique).
        project_of = dict(Resource.objects.filter(organization=organization, project_id__in=wanted,
                                                  external_id__in=[r.group.key for r in fc.resources])
                          .values_list("external_id", "project_id"))
        ahead: dict[int, Decimal] = {pk: ZERO for pk in wanted}
        for row in fc.resources:
            pid = project_of.get(row.group.key)
            if pid is not None:
                ahead[pid] += max(ZERO, row.forecast - row.month_to_date)
        for pk in wanted:
            got = spent.get(pk, ZERO)
            by_project[pk] = (got, got + ahead[pk])
    return Figures(actual=actual, forecast=actual + max(ZERO, fc.forecast - fc.month_to_date), as_of=mtd.as_of,
                   projects=by_project)


def _month_end(first: datetime) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1).date()


# --- validation -----------------------------------------------------------------------------


def _thresholds(value: Any, field: str) -> list[int]:
    if value is None:
        return []
    try:
        items = sorted({int(v) for v in value})
    except (TypeError, ValueError):
        raise DomainError("Enter whole percentages, e.g. 50, 80, 100.", field=field) from None
    if any(not 1 <= v <= MAX_THRESHOLD for v in items):
        raise DomainError(f"Each threshold is a percentage from 1 to {MAX_THRESHOLD}.", field=field)
    return items


def _money(value: Any, currency: str, field: str, *, optional: bool = False) -> Decimal | None:
    if value is None or value == "":
        if optional:
            return None
        raise DomainError("Enter an amount.", field=field)
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise DomainError("Enter an amount.", field=field) from None
    if not amount.is_finite() or amount <= 0:
        raise DomainError("Enter an amount above zero.", field=field)
    places = minor_unit_exponent(currency)
    if amount != round_money(amount, currency):
        raise DomainError(f"Enter at most {places} decimal places.", field=field)
    if amount >= Decimal(10) ** 15:
        raise DomainError("Enter a smaller amount.", field=field)
    return amount


def _clean(values: dict, currency: str) -> dict:
    out: dict[str, Any] = {}
    if "name" in values:
        name = (values["name"] or "").strip()
        if not name:
            raise DomainError("Enter a name.", field="name")
        out["name"] = name[:100]
    if "amount" in values:
        out["amount"] = _money(values["amount"], currency, "amount")
    if "cap_amount" in values:
        out["cap_amount"] = _money(values["cap_amount"], currency, "cap_amount", optional=True)
    for field in ("actual_thresholds", "forecast_thresholds"):
        if field in values:
            out[field] = _thresholds(values[field], field)
    if "recipient_roles" in values:
        roles = sorted(set(values["recipient_roles"] or []))
        unknown = [r for r in roles if r not in Role.values]
        if unknown:
            raise DomainError(f"Unknown role: {', '.join(unknown)}.", field="recipient_roles")
        out["recipient_roles"] = roles
    if "recipient_emails" in values:
        out["recipient_emails"] = sorted({e.strip().lower() for e in values["recipient_emails"] or [] if e.strip()})
    return out


# --- create, change, delete -----------------------------------------------------------------


def _lock_org(organization_id: int) -> list[Budget]:
    return list(Budget.objects.select_for_update(of=("self",)).select_related("project")
                .filter(organization_id=organization_id).order_by("id"))


def project_of(organization: Organization, value: Project | str | None) -> Project | None:
    """The budget's project: a `Project` or a slug, of `organization`; None: the whole
    organisation. Another organisation's project is "No such project", as one that does
    not exist (the answer says nothing about other organisations)."""
    from usage.models import Project

    if value is None or value == "":
        return None
    if isinstance(value, Project):
        found = value if value.organization_id == organization.pk else None
    else:
        found = Project.objects.filter(organization=organization, slug=str(value)).first()
    if found is None:
        raise DomainError("No such project.", field="project")
    return found


@transaction.atomic
def budget_create(*, organization: Organization, actor: User | None = None, api_key: ApiKey | None = None,
                  now: datetime | None = None, project: Project | str | None = None, **values: Any) -> Budget:
    """A budget of the whole organisation, or of one of its `project`s (a `Project` or its
    slug; set here once, never changed)."""
    now = now or timezone.now()
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise TypeError(f"budget_create: unknown fields {sorted(unknown)}")
    clean = _clean({"name": values.get("name"), "amount": values.get("amount"), **values}, organization.currency)
    chosen = project_of(organization, project)
    _lock_org(organization.pk)
    budget = Budget.objects.create(organization=organization, project=chosen,
                                   scope=BudgetScope.ORGANIZATION if chosen is None else BudgetScope.PROJECT,
                                   currency=organization.currency, created_at=now, updated_at=now, **clean)
    audit_record("budgets.created", actor=actor, api_key=api_key, organization=organization, obj=budget,
                 changes={**{k: getattr(budget, k) for k in EDITABLE}, "scope": budget.scope,
                          "project_id": budget.project_id})
    return budget


@transaction.atomic
def budget_update(*, budget: Budget, actor: User | None = None, api_key: ApiKey | None = None,
                  now: datetime | None = None, **values: Any) -> Budget:
    """Change a budget. Raising the amount re-arms the keys it lifts the spend below;
    raising or removing the cap resumes what the cap hibernated once spend is under it."""
    now = now or timezone.now()
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise TypeError(f"budget_update: unknown fields {sorted(unknown)}")
    clean = _clean(values, budget.currency)
    locked = {b.pk: b for b in _lock_org(budget.organization_id)}
    b = locked[budget.pk]
    before = {k: getattr(b, k) for k in EDITABLE}
    for k, v in clean.items():
        setattr(b, k, v)
    changes = {k: [before[k], getattr(b, k)] for k in EDITABLE if before[k] != getattr(b, k)}
    if not changes:
        return b
    if b.amount > before["amount"]:
        b.alerts_sent = [key for key in b.alerts_sent if _still_crossed(b, key)]
    b.alerts_sent = [key for key in b.alerts_sent if _key_configured(b, key)]
    b.updated_at = now
    b.save()
    _apply_cap(b, list(locked.values()), now=now, actor=actor)
    audit_record("budgets.updated", actor=actor, api_key=api_key, organization=b.organization, obj=b,
                 changes=changes)
    return b


@transaction.atomic
def budget_delete(*, budget: Budget, actor: User | None = None, api_key: ApiKey | None = None,
                  now: datetime | None = None) -> None:
    """Delete a budget; what its cap hibernated is resumed first (unless another cap or
    credit hibernation holds it)."""
    now = now or timezone.now()
    locked = _lock_org(budget.organization_id)
    b = next(x for x in locked if x.pk == budget.pk)
    others = [x for x in locked if x.pk != b.pk]
    if b.capped_at is not None:
        _uncap(b, others, now=now, actor=actor, why="budget deleted")
    audit_record("budgets.deleted", actor=actor, api_key=api_key, organization=b.organization, obj=b,
                 changes={"name": b.name, "amount": b.amount, "cap_amount": b.cap_amount})
    b.delete()


def _key_configured(b: Budget, key: str) -> bool:
    kind, _, t = key.partition(":")
    return int(t) in (b.actual_thresholds if kind == AlertKind.ACTUAL else b.forecast_thresholds)


def _figure(b: Budget, kind: str) -> Decimal:
    value = b.actual if kind == AlertKind.ACTUAL else b.forecast
    return value if value is not None else ZERO


def _still_crossed(b: Budget, key: str) -> bool:
    kind, _, t = key.partition(":")
    return _figure(b, kind) >= b.amount * int(t) / 100


# --- evaluation -----------------------------------------------------------------------------


def evaluate_all(*, now: datetime | None = None) -> int:
    """Every budget of every active organisation: one read of the budgets, the figures
    once per organisation, then one transaction per organisation. Returns alerts sent."""
    now = now or timezone.now()
    org_ids = list(Budget.objects.filter(organization__is_active=True).order_by("organization_id")
                   .values_list("organization_id", flat=True).distinct())
    sent = 0
    for org in Organization.objects.filter(pk__in=org_ids).order_by("id"):
        try:
            sent += evaluate_organization(organization=org, now=now)
        except Exception:  # one organisation's failure must not stop the others; logged, retried next pass
            logger.exception("budgets: evaluating organisation %s failed", org.pk)
    return sent


def evaluate_organization(*, organization: Organization, now: datetime | None = None,
                          fig: Figures | None = None) -> int:
    now = now or timezone.now()
    projects = set(Budget.objects.filter(organization=organization, project__isnull=False)
                   .values_list("project_id", flat=True))
    if fig is None or not projects <= set(fig.projects):
        fig = figures(organization=organization, now=now, projects=projects)
    return _evaluate_locked(organization, fig, now)


@transaction.atomic
def _evaluate_locked(organization: Organization, fig: Figures, now: datetime) -> int:
    budgets = _lock_org(organization.pk)
    month = month_start(now).date()
    sent = 0
    for b in budgets:
        if b.currency != organization.currency:
            logger.warning("budgets: budget %s is in %s, its organisation in %s: skipped", b.pk, b.currency,
                           organization.currency)
            continue
        if b.armed_month != month:
            b.armed_month, b.alerts_sent = month, []
        if b.project_id is None:
            b.actual, b.forecast = fig.actual, fig.forecast
        elif b.project_id in fig.projects:
            b.actual, b.forecast = fig.projects[b.project_id]
        else:
            continue  # created after the figures were taken: the next pass
        b.as_of, b.evaluated_at = fig.as_of, now
        alerts = _new_alerts(b, organization, month, now)
        b.save(update_fields=["armed_month", "alerts_sent", "actual", "forecast", "as_of", "evaluated_at"])
        sent += len(alerts)
    for b in budgets:
        _apply_cap(b, budgets, now=now)
    return sent


def _new_alerts(b: Budget, organization: Organization, month: date, now: datetime) -> list[BudgetAlert]:
    alerts = []
    for kind, thresholds in ((AlertKind.ACTUAL, b.actual_thresholds), (AlertKind.FORECAST, b.forecast_thresholds)):
        crossed = [t for t in sorted(thresholds)
                   if f"{kind}:{t}" not in b.alerts_sent and _still_crossed(b, f"{kind}:{t}")]
        if not crossed:
            continue
        b.alerts_sent = sorted(set(b.alerts_sent) | {f"{kind}:{t}" for t in crossed})
        alerts.append(_send(b, organization, kind, crossed[-1], _figure(b, kind), month, now))
    return alerts


def recipients(b: Budget) -> list[str]:
    members = set(Membership.objects.filter(organization_id=b.organization_id, role__in=b.recipient_roles,
                                            user__is_active=True).values_list("user__email", flat=True))
    return sorted({e.lower() for e in members if e} | set(b.recipient_emails))


def _send(b: Budget, organization: Organization, kind: str, threshold: int, spend: Decimal, month: date,
          now: datetime) -> BudgetAlert:
    from core import outbox
    from webhooks.services import emit

    alert = BudgetAlert.objects.create(budget=b, organization=organization, month=month, kind=kind,
                                       threshold=threshold, currency=b.currency, amount=b.amount, spend=spend,
                                       recipients=recipients(b), created_at=now)
    emit(type="budget.threshold_crossed", organization=organization, occurred_at=now,
         dedup_key=f"budget.threshold_crossed:{alert.pk}", data=alert_payload(alert, b))
    outbox.enqueue("budgets.alert_email", alert.pk)
    return alert


def alert_payload(alert: BudgetAlert, b: Budget) -> dict:
    return {
        "budget_id": b.pk, "name": b.name, "scope": b.scope, "month": alert.month.isoformat(),
        "kind": alert.kind, "threshold": alert.threshold, "currency": alert.currency,
        "amount": str(round_money(alert.amount, alert.currency)),
        "spend": str(round_money(alert.spend, alert.currency)),
        "cap_amount": None if b.cap_amount is None else str(round_money(b.cap_amount, b.currency)),
    }


def alert_message(alert: BudgetAlert, name: str, project: str | None = None) -> str:
    """The alert in words; `project`: the project budget's project name."""
    what = "Spend this month" if alert.kind == AlertKind.ACTUAL else "Spend forecast to the end of this month"
    if project is not None:
        what += f" in the project \u201c{project}\u201d"
    return (f"{what} is {format_money(alert.spend, alert.currency)}: {alert.threshold}% of the budget "
            f"\u201c{name}\u201d ({format_money(alert.amount, alert.currency)}) reached.")


def alert_email(alert_id: int) -> int:
    from django.conf import settings
    from django.core.mail import send_mail

    alert = BudgetAlert.objects.select_related("budget__project", "organization").filter(pk=alert_id).first()
    if alert is None or not alert.recipients:
        return 0
    project = alert.budget.project
    return send_mail(
        subject=f"[{settings.PORTAL_BRAND}] Budget {alert.threshold}% ({alert.get_kind_display().lower()}): "
                f"{alert.organization.name}" + (f", project {project.name}" if project else ""),
        message=f"{alert_message(alert, alert.budget.name, project.name if project else None)}\n\nSee your budgets: "
                f"{settings.PORTAL_BASE_URL.rstrip('/')}/budgets/\n",
        from_email=None, recipient_list=alert.recipients,
    )


# --- hard cap -------------------------------------------------------------------------------


def _cap_due(b: Budget, month: date) -> bool:
    return b.cap_amount is not None and b.actual is not None and b.armed_month == month and b.actual >= b.cap_amount


def _apply_cap(b: Budget, org_budgets: list[Budget], *, now: datetime, actor: User | None = None) -> None:
    month = month_start(now).date()
    others = [x for x in org_budgets if x.pk != b.pk]
    if b.capped_at is not None and (b.capped_month != month or not _cap_due(b, month)):
        _uncap(b, others, now=now, actor=actor, why="month turned" if b.capped_month != month else "cap raised")
    elif _cap_due(b, month):
        _cap(b, now=now, month=month)


def _running(b: Budget) -> QuerySet[Resource]:
    from usage.models import Resource

    running = Resource.objects.filter(organization_id=b.organization_id, state="running")
    if b.project_id is not None:
        running = running.filter(project_id=b.project_id)
    return running.order_by("id")


def _covers(b: Budget, project_id: int | None) -> bool:
    """Does `b`'s scope cover a resource of `project_id` (None: in no project)?"""
    return b.project_id is None or b.project_id == project_id


def _describe(b: Budget) -> str:
    """\u201cMonthly\u201d, or \u201cMonthly\u201d, project \u201cTraining\u201d."""
    name = f"\u201c{b.name}\u201d"
    return name if b.project is None else f"{name}, project \u201c{b.project.name}\u201d"


def _cap(b: Budget, *, now: datetime, month: date) -> None:
    from credits.hibernation import provisioning_outbox
    from credits.models import ProvisioningAction
    from usage.services import resource_change_state
    from webhooks.services import emit

    assert b.cap_amount is not None and b.actual is not None
    reason = (f"Budget cap reached: {format_money(b.actual, b.currency)} of "
              f"{format_money(b.cap_amount, b.currency)} ({_describe(b)})")
    ids = []
    for resource in _running(b):
        resource_change_state(resource=resource, state="hibernated", at=now, source=SOURCE, reason=reason)
        ids.append(resource.pk)
    first = b.capped_at is None
    if not ids and not first:
        return  # already capped, nothing started since: a rerun does nothing
    if first:
        b.capped_at, b.capped_month = now, month
    b.capped_resources = sorted(set(b.capped_resources) | set(ids))
    b.save(update_fields=["capped_at", "capped_month", "capped_resources"])
    organization = b.organization
    request = provisioning_outbox(organization, ProvisioningAction.HIBERNATE, ids, reason, now) if ids else None
    emit(type="resource.hibernated", organization=organization, occurred_at=now,
         data={"resource_ids": ids, "reason": reason})
    audit_record("budgets.capped", organization=organization, obj=b, reason=reason,
                 changes={"resource_ids": ids, "actual": b.actual, "cap_amount": b.cap_amount,
                          "provisioning_request_id": request.pk if request else None})


def _uncap(b: Budget, others: list[Budget], *, now: datetime, actor: User | None, why: str) -> None:
    from credits.hibernation import provisioning_outbox
    from credits.models import Balance, ProvisioningAction
    from usage.models import Resource
    from usage.services import resource_change_state
    from webhooks.services import emit

    month = month_start(now).date()
    held = dict(Resource.objects.filter(pk__in=b.capped_resources, state="hibernated").order_by("id")
                .values_list("pk", "project_id"))
    holders = [x for x in others if x.capped_at is not None and x.capped_month == month and _cap_due(x, month)]
    balance = (Balance.objects.select_for_update(of=("self",))
               .filter(organization_id=b.organization_id, hibernated_at__isnull=False).first())
    organization = b.organization
    reason = f"Budget cap lifted ({why}): {_describe(b)}"
    # Each resource goes to the first other capped budget whose scope covers it (the
    # organisation's, or its project's), else to credit hibernation, else back to running.
    handed_to: dict[str, list[int]] = {}
    wake: list[int] = []
    for pk, project_id in held.items():
        holder = next((x for x in holders if _covers(x, project_id)), None)
        if holder is not None:
            holder.capped_resources = sorted({*holder.capped_resources, pk})
            handed_to.setdefault(f"budget {holder.pk}", []).append(pk)
        elif balance is not None:
            handed_to.setdefault("credit hibernation", []).append(pk)
        else:
            wake.append(pk)
    for holder in holders:
        if f"budget {holder.pk}" in handed_to:
            holder.save(update_fields=["capped_resources"])
    if balance is not None and "credit hibernation" in handed_to:
        balance.hibernated_resources = sorted(set(balance.hibernated_resources) | set(handed_to["credit hibernation"]))
        balance.save(update_fields=["hibernated_resources"])
    handed = ", ".join(handed_to)
    resumed: list[int] = []
    for resource in Resource.objects.filter(pk__in=wake).order_by("id"):
        resource_change_state(resource=resource, state="running", at=now, source=SOURCE, reason=reason)
        resumed.append(resource.pk)
    b.capped_at, b.capped_month, b.capped_resources = None, None, []
    b.save(update_fields=["capped_at", "capped_month", "capped_resources"])
    request = None
    if resumed:
        request = provisioning_outbox(organization, ProvisioningAction.RESUME, resumed, reason, now)
        emit(type="resource.resumed", organization=organization, occurred_at=now,
             data={"resource_ids": resumed, "reason": reason})
    audit_record("budgets.uncapped", actor=actor, organization=organization, obj=b, reason=reason,
                 changes={"resource_ids": resumed, "handed_to": handed,
                          "held": sorted(pk for pks in handed_to.values() for pk in pks),
                          "provisioning_request_id": request.pk if request else None})
