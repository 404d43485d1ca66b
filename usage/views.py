"""Portal: the Usage page (running resources and their live cost, month to date, daily
cost by product) and its CSV export."""

from __future__ import annotations

from django.db.models import Sum
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone

from accounts.portal import portal_view
from core.csv_export import csv_download, date_cell, exact_cell, money_cell
from core.forms import DayRangeForm, errors_text
from core.money import ZERO, format_money, format_rate
from pricing.proration import month_start
from usage import sandbox
from usage.charts import stacked_bars
from usage.models import UsageDaily
from usage.selectors import daily_cost_by_product, month_to_date, running_costs

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
        "chart": stacked_bars(days, series, org.currency),
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
            .values("day", "resource__external_id", "resource__name", "product__code", "state", "currency")
            .annotate(minutes=Sum("minutes"), amount=Sum("amount"))
            .order_by("day", "resource__external_id", "product__code", "state"))
    return csv_download(
        f"usage-{org.slug}-{start}-{end}.csv",
        ["day", "resource", "resource_name", "product", "state", "minutes", "currency", "amount", "amount_exact"],
        ([date_cell(r["day"]), r["resource__external_id"], r["resource__name"], r["product__code"], r["state"],
          r["minutes"], r["currency"], money_cell(r["amount"], r["currency"]), exact_cell(r["amount"])]
         for r in rows.iterator()),
    )
