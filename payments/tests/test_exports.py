"""The payments CSV (issue 16: history at hand)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from payments.models import Payment, PaymentStatus
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def _rows(client) -> list[dict]:
    response = client.get("/payments/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_payments_csv_writes_money_at_the_currencys_places_and_times_in_utc(org, make_member, client):
    payment = PaymentFactory(organization=org, status=PaymentStatus.SUCCEEDED, amount=Decimal("20000.000000000000"),
                             amount_refunded=Decimal("0.5"))
    Payment.objects.filter(pk=payment.pk).update(created_at=datetime(2026, 3, 1, 9, 30, 15, 123, tzinfo=UTC),
                                                 succeeded_at=datetime(2026, 3, 1, 9, 31, tzinfo=UTC))
    client.force_login(make_member(org, "viewer").user)
    assert 'href="/payments/export.csv"' in client.get("/payments/").content.decode()
    [row] = _rows(client)
    assert row["created_at_utc"] == "2026-03-01T09:30:15Z" and row["succeeded_at_utc"] == "2026-03-01T09:31:00Z"
    assert (row["currency"], row["amount"], row["amount_refunded"]) == (org.currency, "20000.00", "0.50")
    assert row["status"] == "succeeded" and row["failed_at_utc"] == ""


def test_payments_csv_holds_only_the_members_organisation(org, other_org, make_member, client):
    PaymentFactory(organization=org, status=PaymentStatus.SUCCEEDED, reference="ours")
    PaymentFactory(organization=other_org, status=PaymentStatus.SUCCEEDED, reference="theirs")
    client.force_login(make_member(other_org, "billing").user)
    assert [r["reference"] for r in _rows(client)] == ["theirs"]
