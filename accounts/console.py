"""The billing console: Django's admin, branded, with the apps in the order money flows."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

# Customers first, then the way money flows through the system; Django's own last.
APP_ORDER = ["accounts", "pricing", "usage", "credits", "invoices", "payments", "core", "auth"]


class ConsoleSite(admin.AdminSite):
    site_header = "cloudbill billing console"
    site_title = "cloudbill console"
    index_title = "Customers, prices, usage, credit, invoices and payments"
    site_url = "/"  # "View site" opens the customer portal

    def get_app_list(self, request, app_label=None):
        apps = list(self._build_app_dict(request, app_label).values())
        position = {label: i for i, label in enumerate(APP_ORDER)}
        apps.sort(key=lambda app: (position.get(app["app_label"], len(APP_ORDER)), app["name"]))
        for app in apps:
            app["models"].sort(key=lambda model: model["name"])
        return apps


class ConsoleAdminConfig(AdminConfig):
    """Installed instead of "django.contrib.admin": the same admin, on ConsoleSite."""

    default_site = "accounts.console.ConsoleSite"
