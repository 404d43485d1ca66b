"""Portal: the Usage page (running resources and their live cost, month to date, daily
cost by product) and its CSV export."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Sum
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.portal import portal_view
from core.csv_export import SafeWriter
from core.money import ZERO, format_money, format_rate
from pricing.models import Product
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
        "chart": stacked_bars(days, series, org.currency,
                              names=dict(Product.objects.filter(code__in=series).values_list("code", "name"))),
        "month_start": month_start(now).date(),
        "today": now.date(),
        "sandbox": sandbox.enabled(),
        "sandbox_form": sandbox.StartServerForm() if sandbox.enabled() else None,
        "sandbox_prefix": sandbox.SANDBOX_PREFIX,
    })


@portal_view("usage:read")
def export(request):
    """Daily usage as CSV: ?start=YYYY-MM-DD&end=YYYY-MM-DD (inclusive), default this month."""
    org = request.membership.organization
    today = timezone.now().date()
    start, end = _day(request.GET.get("start")) or month_start(timezone.now()).date(), _day(request.GET.get("end")) or today
    if end < start or (end - start) > timedelta(days=366):
        start, end = month_start(timezone.now()).date(), today
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{org.slug}-{start}-{end}.csv"'
    writer = SafeWriter(response)
    writer.writerow(["day", "resource", "resource_name", "product", "state", "minutes", "amount", "currency"])
    rows = (UsageDaily.objects.filter(organization=org, day__gte=start, day__lte=end)
            .values("day", "resource__external_id", "resource__name", "product__code", "state", "currency")
            .annotate(minutes=Sum("minutes"), amount=Sum("amount"))
            .order_by("day", "resource__external_id", "product__code", "state"))
    for r in rows:
        writer.writerow([r["day"], r["resource__external_id"], r["resource__name"], r["product__code"], r["state"],
                         r["minutes"], r["amount"], r["currency"]])
    return response


def _day(value: str | None):
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
