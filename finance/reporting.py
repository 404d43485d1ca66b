"""What the console's report pages, their CSV and the reports API share: reading a
report's parameters from a query string (one form, so the page's field errors and the
API's 400 say the same thing) and writing a report's cells for people, for a CSV and
for JSON, by the column's kind. Nothing here knows any one report: everything is read
from `finance.reports.registry.reports()`."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Count

from accounts.models import Organization
from core.csv_export import Figure, date_cell, exact_cell, money_cell
from core.formatting import MISSING, format_amount, format_rate, format_when
from core.money import CurrencyError, validate_currency
from finance.reports.base import Column, Report, ReportParams, ReportSpec

MAX_DAYS = 366  # a day-grain report: a year of bars at most
MAX_MONTHS = 120  # a month-grain report: ten years
MAX_LIMIT = 1000
# Days a report may start or end on: wide enough for any history, narrow enough that no
# report's date arithmetic (the day before the start, the month after the end) overflows.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)

GRAIN_LABELS = {"day": "Day", "month": "Month"}
GROUP_LABELS = {"product_group": "Product group", "product": "Product", "customer": "Customer",
                "country": "Customer country", "provider": "Provider", "outcome": "Outcome"}


def default_currency() -> str:
    """The currency most organisations bill in (a report is one currency; this is the
    form's first answer, never a sum over currencies)."""
    top = (Organization.objects.values("currency").annotate(n=Count("id")).order_by("-n", "currency").first())
    return top["currency"] if top else "USD"


def currencies_in_use() -> list[str]:
    return sorted(set(Organization.objects.values_list("currency", flat=True)))


def default_range(today: date) -> tuple[date, date]:
    """The first day of last month to today, both inclusive."""
    first = today.replace(day=1)
    last_month = (first - timedelta(days=1)).replace(day=1)
    return last_month, today


class ReportForm(forms.Form):
    """?from=YYYY-MM-DD&to=YYYY-MM-DD&currency=EUR[&grain=][&group_by=][&limit=][&organization=]

    `from` and `to` are UTC days, both inclusive (the report's half-open range is
    [from, to + 1 day)); grain and group_by are the report's own choices (its first is
    the default); limit is a top-N (the reports that list top customers honour it)."""

    def __init__(self, spec: ReportSpec, data: Any = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.spec = spec
        self.fields["from"] = forms.DateField(label="From", input_formats=["%Y-%m-%d"],
                                              widget=forms.DateInput(attrs={"type": "date"}),
                                              error_messages={"invalid": "Give a day as YYYY-MM-DD."})
        self.fields["to"] = forms.DateField(label="To (inclusive)", input_formats=["%Y-%m-%d"],
                                            widget=forms.DateInput(attrs={"type": "date"}),
                                            error_messages={"invalid": "Give a day as YYYY-MM-DD."})
        self.fields["currency"] = forms.CharField(
            label="Currency", max_length=3, min_length=3,
            help_text="One currency: reports never add currencies together.",
            widget=forms.TextInput(attrs={"list": "report-currencies", "size": 4, "autocomplete": "off"}))
        self.fields["grain"] = forms.ChoiceField(
            label="Per", required=False, choices=[(g, GRAIN_LABELS.get(g, g)) for g in spec.grains])
        if spec.group_by:
            self.fields["group_by"] = forms.ChoiceField(
                label="Group by", required=False,
                choices=[(g, GROUP_LABELS.get(g, g.replace("_", " ").capitalize())) for g in spec.group_by])
        self.fields["limit"] = forms.IntegerField(
            label="Top", required=False, min_value=1, max_value=MAX_LIMIT,
            help_text="How many in a top list (top customers).")
        self.fields["organization"] = forms.IntegerField(
            label="Organisation id", required=False, min_value=1, max_value=2**63 - 1, help_text="Empty: every organisation.")

    def clean_currency(self) -> str:
        code = self.cleaned_data["currency"].strip().upper()
        try:
            return validate_currency(code)
        except CurrencyError:
            raise forms.ValidationError(f"{code!r} is not an ISO 4217 currency code.") from None

    def clean_organization(self) -> int | None:
        pk = self.cleaned_data.get("organization")
        if pk is not None and not Organization.objects.filter(pk=pk).exists():
            raise forms.ValidationError(f"There is no organisation {pk}.")
        return pk

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        grain = data.get("grain") or self.spec.grains[0]
        data["grain"] = grain
        if self.spec.group_by:
            data["group_by"] = data.get("group_by") or self.spec.group_by[0]
        for key in ("from", "to"):
            day = data.get(key)
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                self.add_error(key, f"Give a day from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}.")
                data.pop(key, None)
        start, last = data.get("from"), data.get("to")
        if start is None or last is None:
            return data
        if last < start:
            self.add_error("to", "The range ends before it starts.")
        elif grain == "day" and (last - start).days + 1 > MAX_DAYS:
            self.add_error("to", f"A report per day covers at most {MAX_DAYS} days; choose per month.")
        elif (last.year - start.year) * 12 + last.month - start.month + 1 > MAX_MONTHS:
            self.add_error("to", f"A report covers at most {MAX_MONTHS} months.")
        return data

    def params(self) -> ReportParams:
        """The valid form as the report's parameters (call after is_valid())."""
        data = self.cleaned_data
        return ReportParams(start=data["from"], end=data["to"] + timedelta(days=1), currency=data["currency"],
                            grain=data["grain"], organization_id=data.get("organization"),
                            group_by=data.get("group_by"), limit=data.get("limit"))


# --- Cells --------------------------------------------------------------------------------


def _quantity(value: Decimal) -> str:
    return f"{value:,f}"


def display_cell(value: Any, column: Column, currency: str) -> str:
    """A cell for people, in the console's table: money through format_amount (what
    `|money` writes), rates in full, days and months through format_when."""
    if value is None or value == "":
        return MISSING
    kind = column.kind
    if kind == "money":
        return format_amount(value, currency)
    if kind == "rate":
        return format_rate(value, currency)
    if kind == "date":
        # A report may key its days as ISO strings (credit held by day): written as they are.
        return format_when(value, "date") if isinstance(value, date) else str(value)
    if kind == "month":
        return format_when(value, "month") if isinstance(value, date) else str(value)
    if kind == "count":
        return f"{value:,}" if isinstance(value, int) else str(value)
    if kind == "quantity" and isinstance(value, Decimal):
        return _quantity(value)
    if kind == "percent" and isinstance(value, Decimal):
        return f"{value:f} %"
    if kind == "days" and isinstance(value, Decimal | int):
        return f"{value} days"
    return str(value)


def csv_cell(value: Any, column: Column, currency: str) -> object:
    """A CSV cell through core.csv_export: money at the currency's places, rates at 12,
    dates ISO 8601, months YYYY-MM, numbers bare."""
    if value is None:
        return ""
    kind = column.kind
    if kind == "money":
        return money_cell(value, currency)
    if kind == "rate":
        return exact_cell(value)
    if kind == "date" and isinstance(value, date):
        return date_cell(value)
    if kind == "month" and isinstance(value, date):
        return value.strftime("%Y-%m")
    if isinstance(value, Decimal):
        return Figure(value)
    return value


def json_cell(value: Any, column: Column, currency: str) -> Any:
    """A JSON value: money and every Decimal as a string (never a float), money at the
    currency's places; dates ISO 8601, months YYYY-MM; counts as integers."""
    if value is None:
        return None
    cell = csv_cell(value, column, currency)
    return str(cell) if isinstance(cell, Decimal) else cell


def csv_rows(report: Report):
    currency = report.params.currency
    for row in report.rows:
        yield [csv_cell(row.get(c.key), c, currency) for c in report.columns]


def json_rows(report: Report) -> list[dict[str, Any]]:
    currency = report.params.currency
    return [{c.key: json_cell(row.get(c.key), c, currency) for c in report.columns} for row in report.rows]


def json_totals(report: Report) -> dict[str, Any] | None:
    if report.totals is None:
        return None
    currency = report.params.currency
    columns = {c.key: c for c in report.columns}
    return {k: json_cell(v, columns[k], currency) if k in columns else (str(v) if isinstance(v, Decimal) else v)
            for k, v in report.totals.items()}


def json_chart(report: Report) -> dict[str, Any] | None:
    """The chart as data: Decimal values as strings (the page's script parses them for
    drawing; the figures stay exact in the JSON)."""
    chart = report.chart
    if chart is None:
        return None
    return {"kind": chart.kind, "labels": list(chart.labels), "unit": chart.unit,
            "series": [{"label": s.label, "values": [str(v) for v in s.values], "kind": s.kind}
                       for s in chart.series]}


def csv_filename(report: Report) -> str:
    p = report.params
    last = p.end - timedelta(days=1)
    return f"report-{report.name}-{p.currency}-{p.start:%Y%m%d}-{last:%Y%m%d}.csv"
