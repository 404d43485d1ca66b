"""Every console list exports to CSV: read-only, for staff who may view the model, audited
(issue 16: CSV export of any list)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission

from accounts.models import AuditLog
from accounts.staff import BILLING_ADMIN, SUPPORT
from accounts.tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

LEDGER = "/console/credits/ledgerentry/"


def _staff(group_name=None, *perms):
    from accounts.staff import sync_staff_groups

    sync_staff_groups()
    user = UserFactory(is_staff=True)
    if group_name:
        user.groups.add(Group.objects.get(name=group_name))
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def entries(org):
    from credits.services import ledger_post

    ledger_post(organization=org, amount=Decimal("3602.16558333333"), kind="adjustment", reason="=HYPERLINK(1)",
                reference="test:1")
    ledger_post(organization=org, amount=Decimal("-0.000000000001"), kind="adjustment", reason="tiny",
                reference="test:2")
    from credits.models import LedgerEntry

    return list(LedgerEntry.objects.filter(organization=org).order_by("id"))


def _export(client, url, ids):
    return client.post(url, {"action": "export_as_csv", "_selected_action": [str(i) for i in ids]})


def test_support_exports_a_read_only_list_as_the_columns_it_shows(client, org, entries):
    client.force_login(_staff(SUPPORT))
    response = _export(client, LEDGER, [e.pk for e in entries])
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["Created at", "Organization", "Kind", "Amount", "Promo amount", "Balance after", "Reason",
                       "Reference", "By"]
    by_reference = {row[7]: row for row in rows[1:]}
    first, tiny = by_reference["test:1"], by_reference["test:2"]
    assert first[0].endswith("Z") and first[1] == str(org) and first[2] == "Adjustment"
    assert first[3] == "3602.165583333330" and first[6] == "'=HYPERLINK(1)"  # exact, and never a live formula
    assert tiny[3] == "-0.000000000001" and tiny[4] == "0.000000000000"  # fixed point, never 0E-12


def test_every_registered_list_offers_the_export_and_no_import(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    site = admin.site
    for model, model_admin in site._registry.items():
        request = client.get(f"/console/{model._meta.app_label}/{model._meta.model_name}/").wsgi_request
        actions = model_admin.get_actions(request)
        assert "export_as_csv" in actions, model
        assert not any("import" in name for name in actions), model


def test_staff_without_the_models_view_permission_cannot_export(client, org, entries):
    from django.test import RequestFactory

    from credits.models import LedgerEntry

    outsider = _staff(None, "view_organization")  # staff, but not allowed to see the ledger
    client.force_login(outsider)
    response = _export(client, LEDGER, [e.pk for e in entries])
    assert response.status_code == 403
    request = RequestFactory().get(LEDGER)
    request.user = outsider
    assert "export_as_csv" not in admin.site._registry[LedgerEntry].get_actions(request)
    assert not AuditLog.objects.filter(action="ledgerentry.exported_in_console").exists()


def test_an_export_is_audited_with_who_how_many_and_which_columns(client, org, entries):
    staff = _staff(BILLING_ADMIN)
    client.force_login(staff)
    b"".join(_export(client, LEDGER, [entries[0].pk]).streaming_content)
    audit = AuditLog.objects.get(action="ledgerentry.exported_in_console")
    assert audit.actor == staff
    assert audit.changes["rows"] == 1 and audit.changes["columns"][0] == "Created at"


def test_exporting_an_ordinary_list_works_for_its_viewers_too(client):
    OrganizationFactory(name="Nordlicht GmbH")
    client.force_login(_staff(SUPPORT))
    from accounts.models import Organization

    response = _export(client, "/console/accounts/organization/", list(Organization.objects.values_list("pk", flat=True)))
    body = b"".join(response.streaming_content).decode()
    assert "Nordlicht GmbH" in body
