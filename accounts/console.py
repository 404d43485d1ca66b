"""The billing console: Django's admin, branded, with the apps in the order money flows."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db import models

from core.money import AMOUNT_DECIMAL_PLACES

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


def money_for_people(value: Decimal) -> str:
    """A stored amount (12 places) as staff read it: '20,000.00', '0.034333333333' —
    trailing zeros dropped down to two places, nothing rounded away."""
    places = max(2, -value.normalize().as_tuple().exponent)
    return f"{value:,.{min(places, AMOUNT_DECIMAL_PLACES)}f}"


def _readable_money(display_for_field):
    def display(value, field, empty_value_display, *args, **kwargs):
        if (isinstance(value, Decimal) and isinstance(field, models.DecimalField)
                and field.decimal_places == AMOUNT_DECIMAL_PLACES and value.is_finite()):
            return money_for_people(value)
        return display_for_field(value, field, empty_value_display, *args, **kwargs)

    return display


class ConsoleAdminConfig(AdminConfig):
    """Installed instead of "django.contrib.admin": the same admin, on ConsoleSite."""

    default_site = "accounts.console.ConsoleSite"

    def ready(self) -> None:
        super().ready()
        # Money columns keep 12 places (per-minute rates); the admin would print all twelve
        # ("20000.000000000000") in lists and read-only fields. Django offers no hook for
        # a field's display, so its two callers get a wrapped display_for_field.
        from django.contrib.admin import helpers
        from django.contrib.admin.templatetags import admin_list

        for module in (helpers, admin_list):
            module.display_for_field = _readable_money(module.display_for_field)
