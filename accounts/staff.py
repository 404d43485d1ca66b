"""Staff groups, defined in code and re-synced after every migrate.

Each group holds what its work in the console and the API needs, model by model, and
nothing else (docs/accounts.md has the same table; a test keeps the two equal):

- Billing admin: runs customers' billing: edits billing profiles and memberships, the
  price book, tax rates and coupons; moves money only through the audited actions
  (adjust credit, finalize/void/credit invoices, refunds, bank transfers); acts across
  organisations through the API. Never users, groups or permissions, never deletes a
  record of money.
- Support (read-only): sees every console page, changes nothing; reads the API across
  organisations.

Staff accounts, groups and permissions are managed by superusers only (accounts/admin.py).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

BILLING_ADMIN = "Billing admin"
SUPPORT = "Support (read-only)"

_EDIT = ("view", "add", "change")
_ALL = ("view", "add", "change", "delete")

# "app.model": (Billing admin, Support). A verb without "_" is a model permission
# (view/add/change/delete); one with "_" is the codename of a custom permission.
CONSOLE_ACCESS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # Creating customers and editing their profile; API access across organisations.
    "accounts.organization": ((*_EDIT, "platform_read", "platform_write"), ("view", "platform_read")),
    "accounts.membership": (_ALL, ("view",)),  # the owner rules hold in the console too
    "accounts.invitation": (("view",), ("view",)),
    "accounts.apikey": (("view", "change"), ("view",)),  # change: the "Revoke" action
    "accounts.auditlog": (("view",), ("view",)),
    "accounts.user": (("view",), ("view",)),  # to find people (membership autocomplete)
    # Webhook endpoints (platform-wide ones are made here), their secrets, tests and replays;
    # the delivery log is a record.
    "webhooks.webhookendpoint": (_ALL, ("view",)),
    "webhooks.webhookdelivery": (("view",), ("view",)),
    "webhooks.webhookattempt": (("view",), ("view",)),  # the delivery page's attempt log
    # The price book. Deleting a price or contract not yet in force cancels it (audited).
    "pricing.productgroup": (_EDIT, ("view",)),
    "pricing.product": (_EDIT, ("view",)),
    "pricing.price": (_ALL, ("view",)),
    "pricing.pricetier": (_ALL, ("view",)),
    "pricing.contract": (_ALL, ("view",)),
    "pricing.contractprice": (_ALL, ("view",)),
    # Usage is a record of what happened: read-only, but for the metric catalogue.
    "usage.resource": (("view",), ("view",)),
    "usage.stateinterval": (("view",), ("view",)),
    "usage.addonattachment": (("view",), ("view",)),
    "usage.usageevent": (("view",), ("view",)),
    "usage.ratedusage": (("view",), ("view",)),
    "usage.usageaccrual": (("view",), ("view",)),
    "usage.usagehourly": (("view",), ("view",)),
    "usage.usagedaily": (("view",), ("view",)),
    "usage.meteringchunk": (("view",), ("view",)),
    "usage.meteringrun": (("view",), ("view",)),
    "usage.metric": (_EDIT, ("view",)),
    # Credit moves only through "Adjust credit…" (and resume/retry, which need the same).
    "credits.balance": (("view", "adjust_credit"), ("view",)),
    "credits.ledgerentry": (("view",), ("view",)),
    "credits.promogrant": (("view",), ("view",)),
    "credits.topup": (("view",), ("view",)),
    "credits.autotopupsettings": (("view", "change"), ("view",)),
    "credits.creditevent": (("view",), ("view",)),
    "credits.provisioningrequest": (("view",), ("view",)),
    # Runway admission: a per-organisation policy (deleting one returns to the default).
    "credits.admissionpolicy": (_ALL, ("view",)),
    # The zero-balance ladder: its per-organisation policy is edited (audited); ladders only read.
    "credits.ladderpolicy": (_EDIT, ("view",)),
    "credits.hibernationladder": (("view",), ("view",)),
    # Invoices change only through their actions, each with its permission and a reason.
    "invoices.invoice": (("view", "finalize_invoice", "void_invoice", "credit_invoice"), ("view",)),
    "invoices.invoiceline": (("view",), ("view",)),
    "invoices.invoicepayment": (("view",), ("view",)),
    "invoices.invoicepaymentreversal": (("view",), ("view",)),
    "invoices.creditnote": (("view",), ("view",)),
    "invoices.creditnoteline": (("view",), ("view",)),
    "invoices.taxrate": (_EDIT, ("view",)),
    "invoices.coupon": (_EDIT, ("view",)),
    "invoices.couponredemption": (_ALL, ("view",)),
    "invoices.invoicerun": (("view",), ("view",)),
    "invoices.invoicerunitem": (("view",), ("view",)),
    # Payments are records; refunds and bank transfers are the two audited actions.
    "payments.payment": (("view", "refund_payment", "record_manual_payment"), ("view",)),
    "payments.refund": (("view",), ("view",)),
    "payments.webhookevent": (("view",), ("view",)),
    "payments.paymentmethod": (("view",), ("view",)),
    "payments.dunningcase": (("view",), ("view",)),
    "payments.receipt": (("view",), ("view",)),
    # Budgets are edited through the services (re-arming, the hard cap; audited); alerts are records.
    "budgets.budget": (_ALL, ("view",)),
    "budgets.budgetalert": (("view",), ("view",)),
    # Finance: the chart and the movement mapping are edited (audited; an account with
    # lines is never deleted); the journal is built by its job and only read.
    "finance.account": (_EDIT, ("view",)),
    "finance.movementaccount": (_EDIT, ("view",)),
    "finance.journalentry": (("view",), ("view",)),
    "finance.journalline": (("view",), ("view",)),
    "finance.journalday": (("view",), ("view",)),
}


def _permissions(column: int) -> tuple[str, ...]:
    perms = []
    for label, verbs in CONSOLE_ACCESS.items():
        app, model = label.split(".")
        perms += [f"{app}.{verb if '_' in verb else f'{verb}_{model}'}" for verb in verbs[column]]
    return tuple(perms)


# {group: ("app.codename", …)}: the form `user.has_perm` takes.
GROUP_PERMISSIONS: dict[str, tuple[str, ...]] = {BILLING_ADMIN: _permissions(0), SUPPORT: _permissions(1)}


def sync_staff_groups(sender=None, **kwargs) -> None:
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    # post_migrate is sent once per app; permissions of an app exist only after its own
    # signal, so sync once, after the last app's.
    last = [c for c in apps.get_app_configs() if c.models_module is not None][-1]
    if sender is not None and sender is not last:
        return
    by_name = {f"{app}.{codename}": pk for pk, app, codename in
               Permission.objects.values_list("pk", "content_type__app_label", "codename")}
    for name, perms in GROUP_PERMISSIONS.items():
        missing = sorted(set(perms) - set(by_name))
        if missing:  # a renamed model or permission must not leave a group silently short
            raise ImproperlyConfigured(f"accounts.staff: the {name!r} group names unknown permissions: {missing}")
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([by_name[p] for p in perms])


# What makes a user staff and what they may do: set by superusers only.
STAFF_ACCESS_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def _held_permissions(user) -> set[str]:
    """Every permission the user holds directly or through a group, active or not (an
    inactive account's rights come back when it is reactivated)."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    return {f"{app}.{codename}" for app, codename in Permission.objects.filter(
        Q(user=user) | Q(group__user=user)).values_list("content_type__app_label", "codename")}


def may_manage_user(actor, target) -> bool:
    """Whether `actor` may change or delete `target` in the console: superusers may;
    anyone else only a person who is not staff and holds no right the actor lacks."""
    if actor.is_superuser:
        return True
    if target.is_superuser or target.is_staff:
        return False
    return _held_permissions(target) <= _held_permissions(actor)
