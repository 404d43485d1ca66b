"""Staff groups, defined in code and re-synced after every migrate.

- Billing admin: every permission of the billing apps, and API access across organisations.
- Support (read-only): view permissions only, and read-only API access.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

BILLING_APPS = ("accounts", "pricing", "usage", "credits", "invoices", "payments", "core")
BILLING_ADMIN = "Billing admin"
SUPPORT = "Support (read-only)"


def sync_staff_groups(sender=None, **kwargs) -> None:
    from django.apps import apps

    # post_migrate is sent once per app; permissions of an app exist only after its own
    # signal, so sync once, after the last app's.
    last = [c for c in apps.get_app_configs() if c.models_module is not None][-1]
    if sender is not None and sender is not last:
        return
    perms = Permission.objects.filter(content_type__app_label__in=BILLING_APPS)
    admin, _ = Group.objects.get_or_create(name=BILLING_ADMIN)
    admin.permissions.set(perms.exclude(codename="delete_auditlog").exclude(codename="change_auditlog"))
    support, _ = Group.objects.get_or_create(name=SUPPORT)
    support.permissions.set(list(perms.filter(codename__startswith="view_")) + list(perms.filter(codename="platform_read")))
