"""The billing console: Django's admin, branded, with the apps in the order money flows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db import models

from core.formatting import format_date, format_datetime
from core.money import AMOUNT_DECIMAL_PLACES, format_money, format_rate

# Customers first, then the way money flows through the system; Django's own last.
APP_ORDER = ["accounts", "pricing", "usage", "credits", "invoices", "payments", "finance", "core", "auth"]


class ConsoleSite(admin.AdminSite):
    site_header = "cloudbill billing console"
    site_title = "cloudbill console"
    index_title = "Customers, prices, usage, credit, invoices and payments"
    site_url = "/"  # "View site" opens the customer portal
    # Billing tables are wide (amounts, currencies, states, periods): they get the page's
    # full width; the index and the breadcrumbs lead everywhere the sidebar did.
    enable_nav_sidebar = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from accounts.console_export import export_as_csv

        # Every list exports to CSV (read-only, view permission, audited).
        self.add_action(export_as_csv)

    def has_permission(self, request):
        # Staff only, and only in a session that passed two-factor sign-in. (The middleware
        # sends a staff session to the code step or enrolment first; this is the backstop.)
        user = request.user
        return super().has_permission(request) and getattr(user, "is_verified", lambda: False)()

    def get_app_list(self, request, app_label=None):
        apps = list(self._build_app_dict(request, app_label).values())
        position = {label: i for i, label in enumerate(APP_ORDER)}
        apps.sort(key=lambda app: (position.get(app["app_label"], len(APP_ORDER)), app["name"]))
        for app in apps:
            app["models"].sort(key=lambda model: model["name"])
        return apps


# Stored amounts that are rates, not money yet: shown with every place they have and a
# label saying per what (model label, field) → label; every other money column is money,
# rounded to its currency's minor unit with its symbol. A label naming a field ("unit")
# takes that field's value.
RATE_FIELDS: dict[tuple[str, str], str] = {
    ("pricing.price", "amount"): "unit",
    ("pricing.pricetier", "unit_amount"): "rate per unit",
    ("pricing.contractprice", "amount"): "rate per unit",
    ("pricing.effectiverate", "rate"): "rate per unit",
    ("pricing.effectiverate", "hourly_rate"): "rate per hour",
    ("usage.ratedusage", "unit_rate"): "unit",
    ("usage.ratedusage", "amount"): "unrounded",
    ("usage.usageaccrual", "amount"): "unrounded",
    ("usage.accrualrate", "rate_per_hour"): "rate per hour",
    ("credits.balance", "burn_rate_per_hour"): "rate per hour",
    ("invoices.invoiceline", "unit_price"): "unit",
}


def _currency_of(obj: Any) -> str | None:
    for path in ("currency", "organization.currency", "invoice.currency", "price.currency"):
        value: Any = obj
        for part in path.split("."):
            value = getattr(value, part, None)
        if isinstance(value, str) and value:
            return value
    return None


def console_figure(obj: Any, field: models.Field, value: Any) -> str | None:
    """How the console shows a stored value, or None to leave it to Django: money as
    money ('$3,602.17'), a rate in full with what it is per ('$0.034333333333 / hour'),
    a time as '2026-12-03 14:05 UTC' in the reader's zone, a date as '2026-12-03'."""
    if isinstance(field, models.DateTimeField) and isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(field, models.DateField) and isinstance(value, date):
        return format_date(value)
    if not (isinstance(field, models.DecimalField) and field.decimal_places == AMOUNT_DECIMAL_PLACES
            and isinstance(value, Decimal) and value.is_finite()):
        return None
    currency = _currency_of(obj)
    label = RATE_FIELDS.get((field.model._meta.label_lower, field.name))
    if currency is None:
        return f"{value.normalize():,f}"
    if label is None:
        return format_money(value, currency)
    per = getattr(obj, label, "") if label == "unit" else label
    return f"{format_rate(value, currency)} ({per})" if per else format_rate(value, currency)


def _figures(lookup_field: Callable[..., tuple[Any, Any, Any]]) -> Callable[..., tuple[Any, Any, Any]]:
    def lookup(name: Any, obj: Any, model_admin: Any = None) -> tuple[Any, Any, Any]:
        field, attr, value = lookup_field(name, obj, model_admin)
        if isinstance(field, models.Field) and not field.is_relation and value is not None:
            shown = console_figure(obj, field, value)
            if shown is not None:
                # No field: the admin prints the text as it is (a callable's answer).
                return None, None, shown
        return field, attr, value

    return lookup


class MoneyInput(forms.NumberInput):
    """A money field in a console form: '0.00', '20000.00', '0.034333333333', never
    '0E-12' or twelve trailing zeros (nothing is rounded: only zeros are dropped)."""

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, Decimal) and value.is_finite():
            places = max(2, -int(value.normalize().as_tuple().exponent))
            return f"{value:.{min(places, AMOUNT_DECIMAL_PLACES)}f}"
        return super().format_value(value)


class ConsoleAdminConfig(AdminConfig):
    """Installed instead of "django.contrib.admin": the same admin, on ConsoleSite."""

    default_site = "accounts.console.ConsoleSite"

    def ready(self) -> None:
        from django.contrib.admin import options

        # Before super().ready() registers the ModelAdmins: each copies these defaults.
        options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.DecimalField] = {"widget": MoneyInput}
        super().ready()
        # Money columns keep 12 places (per-minute rates); the admin would print all twelve
        # ("3,602.165583333330", "0E-12") and dates in Django's US format. Its display has
        # no per-field hook and never sees the row (whose currency money needs), so its two
        # callers get a lookup_field that answers money, rates and times already written
        # (console_figure), and every money input a MoneyInput.
        from django.contrib.admin import helpers
        from django.contrib.admin.templatetags import admin_list

        for module in (helpers, admin_list):
            module.lookup_field = _figures(module.lookup_field)  # type: ignore[attr-defined]
