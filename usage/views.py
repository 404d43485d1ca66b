"""Portal: the Usage page (running resources and their live cost, month to date, daily
cost by product) and its CSV export; the spend explorer and its CSV."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count, Sum
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.portal import portal_view
from accounts.scopes import ROLE_SCOPES
from core.csv_export import csv_download, date_cell, exact_cell, money_cell
from core.formatting import format_date, format_month
from core.forms import DayRangeForm, errors_text
from core.money import ZERO, format_money, format_rate
from pricing.proration import month_start
from usage import sandbox
from usage.billable import MonthError, measured_vs_billable, parse_month
from usage.charts import Series, fold_series, stacked_bar_chart
from usage.forms import SpendForm, month_end
from usage.models import Project, Resource, UsageDaily
from usage.projects import (
    ProjectError,
    ProjectForm,
    RenameForm,
    TagsForm,
    labels_text,
    project_create,
    resource_set_tags,
)
from usage.projects import project_rename as project_rename_service
from usage.selectors import daily_cost_by_product, month_to_date, running_costs
from usage.spend import GROUPINGS, INTERVALS, forecast, projected, spend, spend_zone

CHART_DAYS = 30


@portal_view("usage:read")
def index(request):
    org = request.membership.organization
    now = timezone.now()
    mtd = month_to_date(organization=org, now=now)  # the interim invoice's figure, as on every page
    lines = running_costs(organization=org, now=now)
    rate = sum((line.hourly_rate for line in lines if line.hourly_rate), ZERO)
    days, series = daily_cost_by_product(organization=org, days=CHART_DAYS, today=now.date())
    rows = [{
        "resource": line.resource, "product": line.product, "addon": line.addon,
        "rate": format_rate(line.hourly_rate, org.currency) if line.hourly_rate is not None else None,
    } for line in lines]
    return render(request, "usage/index.html", {
        "mtd": mtd,
        "rate": format_rate(rate, org.currency),
        "per_day": format_money(rate * 24, org.currency),
        "rows": rows,
        "chart": stacked_bar_chart(
            title="Daily cost by product, last 30 days", ticks=[f"{d:%-d %b}" for d in days],
            tooltips=[f"{d:%a %-d %b %Y}" for d in days],
            series=fold_series([Series(name, values) for name, values in series.items()]), currency=org.currency),
        "month_start": month_start(now).date(),
        "today": now.date(),
        "sandbox": sandbox.enabled(),
        "sandbox_form": sandbox.StartServerForm() if sandbox.enabled() else None,
        "sandbox_prefix": sandbox.SANDBOX_PREFIX,
    })


class UsageExportForm(DayRangeForm):
    max_days = 366


@portal_view("usage:read")
def export(request):
    """Daily usage as CSV: ?start=YYYY-MM-DD&end=YYYY-MM-DD (UTC days, inclusive), by
    default this month so far. A date that does not parse, or a range that is backwards
    or longer than a year, is a 400 saying so, never another range than the one asked."""
    org = request.membership.organization
    form = UsageExportForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(errors_text(form), content_type="text/plain; charset=utf-8")
    today = timezone.now().date()
    start = form.cleaned_data["start"] or month_start(timezone.now()).date()
    end = form.cleaned_data["end"] or max(today, start)
    if end < start or (end - start).days + 1 > UsageExportForm.max_days:
        return HttpResponseBadRequest(f"To: must be on or after From, and the range at most {UsageExportForm.max_days} days.",
                                      content_type="text/plain; charset=utf-8")
    rows = (UsageDaily.objects.filter(organization=org, day__gte=start, day__lte=end)
            .values("day", "resource__external_id", "resource__name", "resource__project__name", "resource__labels",
                    "product__code", "state", "currency")
            .annotate(minutes=Sum("minutes"), amount=Sum("amount"))
            .order_by("day", "resource__external_id", "product__code", "state"))
    # A resource's project and labels as they are now, as the spend explorer groups them;
    # labels as `key=value; key=value` (usage.labels allows neither ";" nor spaces in them).
    return csv_download(
        f"usage-{org.slug}-{start}-{end}.csv",
        ["day", "resource", "resource_name", "project", "labels", "product", "state", "minutes", "currency", "amount",
         "amount_exact"],
        ([date_cell(r["day"]), r["resource__external_id"], r["resource__name"], r["resource__project__name"] or "",
          "; ".join(f"{k}={v}" for k, v in sorted((r["resource__labels"] or {}).items())), r["product__code"],
          r["state"], r["minutes"], r["currency"], money_cell(r["amount"], r["currency"]), exact_cell(r["amount"])]
         for r in rows.iterator()),
    )


# --- The spend explorer ----------------------------------------------------------------

PRESETS = (("this-month", "This month"), ("last-month", "Last month"), ("30-days", "Last 30 days"),
           ("90-days", "Last 90 days"), ("12-months", "Last 12 months"))


def _preset(name: str, today: date) -> tuple[date, date]:
    """(From, To), both included."""
    first = today.replace(day=1)
    if name == "last-month":
        last = first - timedelta(days=1)
        return last.replace(day=1), last
    if name == "30-days":
        return today - timedelta(days=29), today
    if name == "90-days":
        return today - timedelta(days=89), today
    if name == "12-months":
        year, month = (first.year, first.month - 11) if first.month > 11 else (first.year - 1, first.month + 1)
        return date(year, month, 1), today
    return first, month_end(today)


def _spend_form(request, today: date) -> SpendForm:
    """The query with a preset's days filled in, and this month when no days are given, so
    the form shows the days it explores."""
    data = request.GET.copy()
    preset = data.pop("preset", [None])[-1]
    if preset or not (data.get("start") or data.get("to")):
        start, to = _preset(preset or "this-month", today)
        data["start"], data["to"] = start.isoformat(), to.isoformat()
    return SpendForm(data, today=today)


def _share(part, whole) -> str | None:
    """'70.2%': a share of the range's total, one decimal."""
    return f"{(part * 100 / whole).quantize(Decimal('0.1'))}%" if whole else None


def _tick(start: date, interval: str) -> str:
    if interval == "day":
        return f"{start:%-d %b}"
    if interval == "week":
        return f"W{start.isocalendar().week}"
    return f"{start:%b %Y}"


def _period_label(a: date, b: date, interval: str) -> str:
    """A period as the table names it, in the one date format: 'Sun 2026-03-01', 'Week 10,
    2026-03-02 – 2026-03-08', 'March 2026' (a whole month)."""
    last = b - timedelta(days=1)
    if interval == "day":
        return f"{a:%a} {format_date(a)}"
    span = f"{format_date(a)} – {format_date(last)}" if a != last else format_date(a)
    if interval == "week":
        return f"Week {a.isocalendar().week}, {span}"
    if interval != "month":
        return span
    whole = a.day == 1 and b == (a.replace(day=28) + timedelta(days=4)).replace(day=1)
    return format_month(a) if whole else span


def _period_rows(result, columns: list[Series], extra: list, *, since: datetime) -> list[dict]:
    """A row per period with spend; the periods still to come (nothing spent yet, after the
    cut-off) as one row with their forecast, so the table reads what was spent."""
    cur, rows, ahead = result.currency, [], []
    for i, ((a, b), total) in enumerate(zip(result.periods, result.period_totals, strict=True)):
        if not total and datetime(a.year, a.month, a.day, tzinfo=since.tzinfo) >= since:
            ahead.append((a, b, extra[i]))
            continue
        rows.append({"label": _period_label(a, b, result.interval), "total": format_money(total, cur),
                     "cells": [(c.name, format_money(c.values[i], cur) if c.values[i] else "") for c in columns],
                     "forecast": format_money(extra[i], cur) if extra[i] else ""})
    if ahead:
        forecast_ahead = sum((e for _, _, e in ahead), ZERO)
        rows.append({"label": f"{_period_label(ahead[0][0], ahead[-1][1], 'range')}, still to come",
                     "total": "", "cells": [(c.name, "") for c in columns], "ahead": True,
                     "forecast": format_money(forecast_ahead, cur) if forecast_ahead else ""})
    return rows


@portal_view("usage:read")
def spend_explorer(request):
    org = request.membership.organization
    now = timezone.now()
    zone = spend_zone(user=request.user)
    today = now.astimezone(zone).date()
    form = _spend_form(request, today)
    fc = forecast(organization=org, now=now)
    cur = org.currency
    context: dict = {
        "form": form, "forecast": fc, "rate": format_rate(fc.hourly_rate, cur), "hours_left": f"{fc.hours_left:,.0f}",
        "money": {"mtd": format_money(fc.month_to_date, cur), "forecast": format_money(fc.forecast, cur)},
        "resource_rows": [{"group": r.group, "mtd": format_money(r.month_to_date, cur),
                           "rate": format_rate(r.hourly_rate, cur) if r.hourly_rate else None,
                           "forecast": format_money(r.forecast, cur)} for r in fc.resources],
    }
    if not form.is_valid():
        # Valid switches are kept, so fixing the days keeps them.
        interval, group_by = form.data.get("interval"), form.data.get("group_by")
        context["query"] = {"interval": interval if interval in INTERVALS else "day",
                            "group_by": group_by if group_by in GROUPINGS else "product"}
        return render(request, "usage/spend.html", context, status=400)
    q = form.cleaned_data
    result = spend(organization=org, start=q["start"], end=q["end"], interval=q["interval"],
                   group_by=q["group_by"], now=now, zone=zone, label_key=q["label_key"])
    extra = projected(result.periods, hourly_rate=fc.hourly_rate, since=fc.as_of, now=now, currency=cur, zone=zone)
    columns = fold_series([Series(s.group.name, s.amounts) for s in result.series])
    base = {"start": q["start"].isoformat(), "to": q["to"].isoformat(), "interval": q["interval"],
            "group_by": q["group_by"]}
    if q["label_key"]:
        base["label_key"] = q["label_key"]
    grouping_label = (f"label {q['label_key']}" if q["group_by"] == "label" else GROUPINGS[q["group_by"]].label.lower())
    context["money"]["total"] = format_money(result.total, cur)
    context["money"]["forecast_ahead"] = format_money(sum(extra, ZERO), cur)
    context.update({
        "spend": result,
        "grouping_label": grouping_label,
        "chart": stacked_bar_chart(
            title=f"Spend by {grouping_label}, by {q['interval']}",
            ticks=[_tick(a, q["interval"]) for a, _ in result.periods],
            tooltips=[_period_label(a, b, q["interval"]) for a, b in result.periods],
            series=columns, currency=cur, forecast=extra),
        "groups": [{"series": s, "total": format_money(s.total, cur),
                    "share": _share(s.total, result.total)} for s in result.series],
        "columns": [c.name for c in columns],
        "period_rows": _period_rows(result, columns, extra, since=fc.as_of or now),
        "column_totals": [(c.name, format_money(sum(c.values, ZERO), cur)) for c in columns],
        "forecast_ahead": sum(extra, ZERO),
        "query": base,
        "range_label": _period_label(q["start"], q["end"], "range"),
        "csv_query": urlencode(base),
        "interval_links": [(i, i.capitalize(), urlencode({**base, "interval": i})) for i in INTERVALS],
        "group_links": [(k, g.label, urlencode({**base, "group_by": k})) for k, g in GROUPINGS.items()
                        if k != "label"],
        # One link per label key the organisation's resources carry.
        "label_links": [(k, urlencode({**base, "group_by": "label", "label_key": k})) for k in label_keys(org)],
        # A year by day is 365 bars: the year preset shows months.
        "preset_links": [(k, label, urlencode({"preset": k, "interval": "month" if k == "12-months" else q["interval"],
                                               "group_by": q["group_by"]}))
                         for k, label in PRESETS],
    })
    return render(request, "usage/spend.html", context)


@portal_view("usage:read")
def spend_export(request):
    """The explorer's figures as CSV: one row per period and group, whole minor units
    (the same cents as the page and the invoices)."""
    org = request.membership.organization
    now = timezone.now()
    zone = spend_zone(user=request.user)
    form = _spend_form(request, now.astimezone(zone).date())
    if not form.is_valid():
        return HttpResponseBadRequest(f"Nothing exported. {errors_text(form)}\n", content_type="text/plain; charset=utf-8")
    q = form.cleaned_data
    result = spend(organization=org, start=q["start"], end=q["end"], interval=q["interval"],
                   group_by=q["group_by"], now=now, zone=zone, label_key=q["label_key"])
    return csv_download(
        f'spend-{org.slug}-{q["start"]}-{q["to"]}-{q["group_by"]}-{q["interval"]}.csv',
        ["period_start", "period_end", f"label:{q['label_key']}" if q["label_key"] else q["group_by"], "name",
         "currency", "amount"],
        ([date_cell(a), date_cell(b), s.group.key, s.group.name, result.currency,
          money_cell(s.amounts[i], result.currency)]
         for i, (a, b) in enumerate(result.periods) for s in result.series if s.amounts[i]),
    )


MONTHS_SHOWN = 13


@portal_view("usage:read", model=Resource)
def resource_detail(request, pk):
    """One resource: what it is, its recent history, and measured against billable for a
    month (usage.billable): minutes reported, billed, excluded and why, minimum time, caps."""
    org = request.membership.organization
    resource = get_object_or_404(Resource.objects.select_related("product", "project"), organization=org, pk=pk)
    now = timezone.now()
    earliest = resource.intervals.order_by("start_minute").values_list("started_at", flat=True).first()
    first = min(resource.created_at, earliest or resource.created_at).date().replace(day=1)
    months, m = [], now.date().replace(day=1)
    while m >= first and len(months) < MONTHS_SHOWN:
        months.append(m)
        m = (m - timedelta(days=1)).replace(day=1)
    try:
        month = parse_month(request.GET.get("month"), today=now.date())
    except MonthError as exc:
        return HttpResponseBadRequest(f"month: {exc}", content_type="text/plain; charset=utf-8")
    history = list(resource.intervals.select_related("eff_product").order_by("-start_minute", "-id")[:20])
    return render(request, "usage/resource.html", {
        "resource": resource, "month": month, "months": [(f"{m:%Y-%m}", m) for m in months or [month]],
        "mb": measured_vs_billable(resource=resource, month=month, now=now),
        "history": history, "currency": org.currency, **_tags_context(request, resource),
    })


def label_keys(org, limit: int = 30) -> list[str]:
    """The label keys the organisation's resources carry, for the explorer's links."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT k FROM usage_resource r, jsonb_object_keys(r.labels) AS k "
                       "WHERE r.organization_id = %s ORDER BY k LIMIT %s", [org.pk, limit])
        return [row[0] for row in cursor.fetchall()]


def _tags_context(request, resource: Resource, form: TagsForm | None = None) -> dict:
    can_edit = "projects:write" in ROLE_SCOPES[request.membership.role]
    if can_edit and form is None:
        form = TagsForm(organization=resource.organization,
                        initial={"project": resource.project_id, "labels": labels_text(resource.labels)})
    return {"can_edit_tags": can_edit, "tags_form": form, "labels": sorted(resource.labels.items())}


@portal_view("projects:write", model=Resource)
@require_POST
def resource_tags(request, pk):
    """The resource page's form: its project and labels (audited)."""
    org = request.membership.organization
    resource = get_object_or_404(Resource.objects.select_related("product", "project"), organization=org, pk=pk)
    form = TagsForm(request.POST, organization=org)
    if form.is_valid():
        resource_set_tags(resource=resource, project=form.cleaned_data["project"], labels=form.cleaned_data["labels"],
                          actor=request.user)
        messages.success(request, f"Project and labels of {resource.name or resource.external_id} saved.")
        return redirect("usage:resource", pk=resource.pk)
    now = timezone.now()
    month = now.date().replace(day=1)
    history = list(resource.intervals.select_related("eff_product").order_by("-start_minute", "-id")[:20])
    return render(request, "usage/resource.html", {
        "resource": resource, "month": month, "months": [(f"{month:%Y-%m}", month)],
        "mb": measured_vs_billable(resource=resource, month=month, now=now),
        "history": history, "currency": org.currency, **_tags_context(request, resource, form),
    }, status=400)


@portal_view("usage:read")
def projects(request):
    """The organisation's projects, their resources and this month's spend; admins create them."""
    org = request.membership.organization
    can_manage = "projects:write" in ROLE_SCOPES[request.membership.role]
    form = ProjectForm()
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Your role does not allow managing projects.")
        form = ProjectForm(request.POST)
        if form.is_valid():
            try:
                project = project_create(organization=org, name=form.cleaned_data["name"],
                                         slug=form.cleaned_data["slug"], actor=request.user)
            except ProjectError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Project “{project.name}” created.")
                return redirect("usage:projects")
        status = 400
    now = timezone.now()
    first = month_start(now).date()
    month = spend(organization=org, start=first, end=(first + timedelta(days=32)).replace(day=1), interval="month",
                  group_by="project", now=now)
    spent = {s.group.key: s.total for s in month.series}
    rows = [{"project": p, "resources": p.resource_count, "spent": spent.get(p.slug, ZERO),
             "rename": RenameForm(initial={"name": p.name}, prefix=f"p{p.pk}")}
            for p in Project.objects.filter(organization=org).annotate(resource_count=Count("resources"))]
    unassigned = Resource.objects.filter(organization=org, project__isnull=True).count()
    return render(request, "usage/projects.html", {
        "rows": rows, "form": form, "can_manage": can_manage, "currency": org.currency, "month": first,
        "unassigned": unassigned, "unassigned_spent": spent.get("", ZERO), "month_total": month.total,
    }, status=status)


@portal_view("projects:write", model=Project)
@require_POST
def project_rename(request, pk):
    org = request.membership.organization
    project = get_object_or_404(Project, organization=org, pk=pk)
    form = RenameForm(request.POST, prefix=f"p{project.pk}")
    if not form.is_valid():
        messages.error(request, f"Not renamed: {errors_text(form)}")
        return redirect("usage:projects")
    try:
        project_rename_service(project=project, name=form.cleaned_data["name"], actor=request.user)
    except ProjectError as exc:
        messages.error(request, f"Not renamed: {exc.message}")
    else:
        messages.success(request, f"Project renamed “{form.cleaned_data['name'].strip()}”.")
    return redirect("usage:projects")
