"""The transactional tests' faster teardown (core/tests/flush.py) leaves what Django's flush
leaves: every model table empty — the append-only ledger and partitioned tables too —
then post_migrate's rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType

from core.tests.flush import empty_database, tables_with_rows
from credits.models import LedgerEntry
from credits.services import ledger_post


@pytest.mark.django_db(transaction=True)
def test_emptying_deletes_every_row_the_append_only_ledger_s_too(org):
    ledger_post(organization=org, currency="USD", amount=Decimal("5.00"), kind="adjustment", reason="test")
    assert LedgerEntry.objects.exists()
    assert {"accounts_organization", "credits_ledgerentry", "django_content_type"} <= set(tables_with_rows("default"))
    assert empty_database("default")
    assert tables_with_rows("default") == []
    assert not ContentType.objects.exists() and not Group.objects.exists()
