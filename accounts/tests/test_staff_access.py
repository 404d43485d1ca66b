"""Who manages staff: only superusers change staff accounts, groups and permissions;
nobody edits a user with more rights than their own; the staff groups hold the least
their work needs."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from accounts.models import AuditLog, User
from accounts.staff import BILLING_ADMIN, CONSOLE_ACCESS, GROUP_PERMISSIONS, SUPPORT
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_admin(client):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    client.force_login(user)
    return client, user


@pytest.fixture
def superuser(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return client, user


def _user_url(user, view="change") -> str:
    return reverse(f"admin:accounts_user_{view}", args=[user.pk])


def _user_form(user, **changes) -> dict:
    data = {"email": user.email, "full_name": user.full_name, "is_active": "on",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"}
    return data | changes


def test_a_billing_admin_cannot_make_itself_superuser(billing_admin):
    client, user = billing_admin
    client.post(_user_url(user), _user_form(user, is_staff="on", is_superuser="on"))
    user.refresh_from_db()
    assert not user.is_superuser


def test_a_billing_admin_cannot_give_itself_groups_or_permissions(billing_admin):
    client, user = billing_admin
    everything = list(Permission.objects.values_list("pk", flat=True))
    client.post(_user_url(user), _user_form(user, is_staff="on", user_permissions=everything,
                                            groups=list(Group.objects.values_list("pk", flat=True))))
    assert not user.user_permissions.exists()
    assert list(user.groups.values_list("name", flat=True)) == [BILLING_ADMIN]


def test_a_billing_admin_cannot_edit_the_superuser(billing_admin):
    client, _user = billing_admin
    boss = UserFactory(is_staff=True, is_superuser=True, email="boss@example.com")
    page = client.get(_user_url(boss))
    assert page.status_code in (200, 403)
    if page.status_code == 200:
        assert not page.context["has_change_permission"]
    client.post(_user_url(boss), _user_form(boss, email="mine@example.com", is_staff="on", is_superuser="on"))
    password = client.post(reverse("admin:auth_user_password_change", args=[boss.pk]),
                           {"password1": "taken over now", "password2": "taken over now", "usable_password": "true"})
    assert password.status_code == 403
    boss.refresh_from_db()
    assert boss.email == "boss@example.com" and not boss.check_password("taken over now")
    assert client.post(_user_url(boss, "delete"), {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=boss.pk).exists()


def test_no_group_holds_a_permission_over_users_groups_or_permissions():
    for name in (BILLING_ADMIN, SUPPORT):
        codenames = set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))
        assert not codenames & {"add_user", "change_user", "delete_user", "add_group", "change_group",
                                "delete_group", "add_permission", "change_permission", "delete_permission"}


def test_a_staff_member_granted_user_rights_still_cannot_edit_staff_or_promote(client):
    """Even a non-superuser someone gave `change_user` edits only people with no more
    rights than their own, and never the staff fields."""
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user", "delete_user"]))
    client.force_login(clerk)
    customer = UserFactory(full_name="Old Name")
    colleague = UserFactory(is_staff=True)
    colleague.groups.add(Group.objects.get(name=SUPPORT))
    assert client.post(_user_url(customer), _user_form(customer, full_name="New Name",
                                                        is_staff="on", is_superuser="on")).status_code == 302
    customer.refresh_from_db()
    assert customer.full_name == "New Name" and not customer.is_staff and not customer.is_superuser
    client.post(_user_url(colleague), _user_form(colleague, full_name="Renamed"))
    colleague.refresh_from_db()
    assert colleague.full_name != "Renamed"
    assert client.post(_user_url(colleague, "delete"), {"post": "yes"}).status_code == 403
    response = client.post(reverse("admin:accounts_user_changelist"),
                           {"action": "delete_selected", "_selected_action": [colleague.pk], "post": "yes"})
    assert response.status_code in (200, 302, 403)
    assert User.objects.filter(pk=colleague.pk).exists()


@pytest.mark.parametrize("url", ["admin:auth_group_changelist", "admin:auth_group_add"])
def test_only_superusers_see_the_groups(billing_admin, url):
    client, user = billing_admin
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth"))
    assert client.get(reverse(url)).status_code == 403


def test_permissions_have_no_console_page(billing_admin):
    client, _user = billing_admin
    assert client.get("/console/auth/permission/").status_code == 404


def test_a_superuser_manages_staff_and_it_is_audited(superuser):
    client, boss = superuser
    person = UserFactory()
    support = Group.objects.get(name=SUPPORT)
    response = client.post(_user_url(person), _user_form(person, is_staff="on", groups=[support.pk]))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    person.refresh_from_db()
    assert person.is_staff and list(person.groups.all()) == [support]
    entry = AuditLog.objects.get(action="user.changed_in_console", object_id=str(person.pk))
    assert entry.actor == boss and entry.changes["is_staff"] == [False, True]
    assert entry.changes["groups"] == [[], [str(support.pk)]]


def test_a_superuser_changing_a_group_is_audited(superuser):
    client, _boss = superuser
    group = Group.objects.get(name=SUPPORT)
    perm = Permission.objects.get(codename="view_user")
    response = client.post(reverse("admin:auth_group_change", args=[group.pk]),
                           {"name": group.name, "permissions": [perm.pk]})
    assert response.status_code == 302
    entry = AuditLog.objects.get(action="group.changed_in_console")
    assert entry.changes["permissions"][1] == [str(perm.pk)]


class TestLeastPrivilege:
    def test_the_groups_hold_exactly_the_table(self):
        for name, wanted in GROUP_PERMISSIONS.items():
            held = {f"{p.content_type.app_label}.{p.codename}"
                    for p in Group.objects.get(name=name).permissions.select_related("content_type")}
            assert held == set(wanted), name

    def test_support_can_only_look(self):
        for perm in GROUP_PERMISSIONS[SUPPORT]:
            assert perm.split(".")[1].startswith("view_") or perm == "accounts.platform_read"

    def test_billing_admin_cannot_delete_money_records_or_touch_the_audit_trail(self):
        held = set(GROUP_PERMISSIONS[BILLING_ADMIN])
        for app, model in [("accounts", "auditlog"), ("credits", "ledgerentry"), ("credits", "balance"),
                           ("invoices", "invoice"), ("payments", "payment"), ("payments", "refund")]:
            assert not {f"{app}.add_{model}", f"{app}.change_{model}", f"{app}.delete_{model}"} & held
        assert "accounts.delete_organization" not in held
        assert not [p for p in held if p.startswith(("auth.", "core.", "otp_"))]

    @pytest.mark.parametrize("group", [BILLING_ADMIN, SUPPORT])
    def test_every_console_page_but_django_s_own_is_visible_to_both_groups(self, group):
        """A model registered in the console without a row in the table shows up here."""
        held = set(GROUP_PERMISSIONS[group])
        for model, model_admin in admin.site._registry.items():
            if model._meta.app_label == "auth":  # groups: superusers only
                continue
            assert f"{model._meta.app_label}.view_{model._meta.model_name}" in held, model
            for inline in model_admin.inlines:
                opts = inline.model._meta
                assert f"{opts.app_label}.view_{opts.model_name}" in held, inline.model

    def test_the_docs_table_is_the_code_table(self):
        """docs/accounts.md lists every model where a group may do more than look."""
        from pathlib import Path

        from django.conf import settings

        doc = (Path(settings.BASE_DIR) / "docs" / "accounts.md").read_text()
        rows = re.findall(r"^\| `(\w+\.\w+)` \| ([^|]*) \| ([^|]*) \|$", doc, flags=re.M)
        documented = {label: tuple({v.strip() for v in column.split(",")} for column in columns)
                      for label, *columns in rows}
        expected = {label: tuple(set(column) for column in columns) for label, columns in CONSOLE_ACCESS.items()
                    if columns != (("view",), ("view",))}
        assert documented == expected


def test_every_model_in_the_console_is_given_to_the_staff_groups():
    """A model registered in the console but missing from CONSOLE_ACCESS is one only
    superusers can reach (credits.AdmissionPolicy was, when it came)."""
    registered = {f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry}
    # Staff accounts, groups and permissions are the superusers' own (see the tests above).
    superusers_only = {"auth.group", "accounts.user"} - set(CONSOLE_ACCESS)
    missing = sorted(registered - set(CONSOLE_ACCESS) - superusers_only)
    assert missing == []
