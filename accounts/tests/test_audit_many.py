"""accounts.audit.audit_record_many writes, in one COPY, the rows audit_record would write."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.audit import AUDIT_COLUMNS, audit_record, audit_record_many
from accounts.models import AuditLog
from accounts.tests.factories import OrganizationFactory, UserFactory, make_api_key

pytestmark = pytest.mark.django_db

FIELDS = ("actor_id", "actor_api_key_id", "organization_id", "action", "object_type", "object_id", "reason", "changes")


def test_the_rows_equal_audit_record_s_for_the_same_entries():
    org = OrganizationFactory()
    user = UserFactory()
    key, _raw = make_api_key(org)
    entries = [
        {"actor": user, "organization": org, "obj": org, "reason": "tab\there\nand a new line",
         "changes": {"total": Decimal("12.345000000000"), "number": "INV-1", "n": 3, "ok": True, "none": None,
                     "nested": {"list": [Decimal("1.5"), "x"]}}},
        {"api_key": key, "organization": org, "obj": key},
        {"actor": AnonymousUser()},  # not signed in: no actor, as audit_record does
    ]
    with CaptureQueriesContext(connection) as ctx:
        assert audit_record_many("thing.done", entries) == 3
    assert [q["sql"].split(" (")[0] for q in ctx.captured_queries] == ['COPY "accounts_auditlog"']
    many = list(AuditLog.objects.filter(action="thing.done").order_by("id").values(*FIELDS, "created_at"))
    AuditLog.objects.filter(action="thing.done").delete()
    for e in entries:
        audit_record("thing.done", **e)
    one_by_one = list(AuditLog.objects.filter(action="thing.done").order_by("id").values(*FIELDS))
    assert [{k: row[k] for k in FIELDS} for row in many] == one_by_one
    assert many[0]["changes"]["total"] == "12.345000000000" and many[2]["actor_id"] is None
    assert len({row["created_at"] for row in many}) == 1


def test_every_audit_column_is_written():
    columns = {f.column for f in AuditLog._meta.concrete_fields if not f.primary_key}
    assert columns == set(AUDIT_COLUMNS)
