"""The ledger's date filter on the page and its CSV (issue 16: history at hand)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from credits.models import LedgerEntry
from credits.services import ledger_post

pytestmark = pytest.mark.django_db


def _post(time_machine, org, amount, when, ref):
    time_machine.move_to(when, tick=False)  # the ledger is append-only: rows are written at their time
    ledger_post(organization=org, amount=Decimal(amount), kind="adjustment", reason=f"test {ref}",
                reference=f"test:{ref}")


@pytest.fixture
def entries(org, time_machine):
    _post(time_machine, org, "100", datetime(2026, 2, 28, 23, 59, tzinfo=UTC), "feb")
    _post(time_machine, org, "-3602.16558333333", datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "mar-1")
    _post(time_machine, org, "5", datetime(2026, 3, 31, 23, 59, tzinfo=UTC), "mar-31")
    _post(time_machine, org, "7", datetime(2026, 4, 1, 0, 0, tzinfo=UTC), "apr")
    time_machine.move_to(datetime(2026, 4, 2, tzinfo=UTC), tick=False)
    assert LedgerEntry.objects.filter(organization=org).count() == 4


@pytest.fixture
def member(org, make_member, client):
    client.force_login(make_member(org, "viewer").user)
    return client


def _reasons(response) -> list[str]:
    return [e.reason for e in response.context["page"].object_list]


def test_the_ledger_filters_whole_utc_days_both_inclusive(entries, member):
    response = member.get("/credits/", {"start": "2026-03-01", "end": "2026-03-31"})
    assert _reasons(response) == ["test mar-31", "test mar-1"]


@pytest.mark.parametrize(("query", "field"), [({"start": "garbage"}, "start"), ({"end": "2026-02-30"}, "end"),
                                              ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
                                              ({"end": "9999-12-31"}, "end")])
def test_an_invalid_date_is_a_field_error_not_silently_ignored(entries, member, query, field):
    response = member.get("/credits/", query)
    assert response.status_code == 200
    assert list(response.context["filters"].errors) == [field]
    assert _reasons(response) == []  # not the whole ledger passed off as the answer
    page = response.content.decode()
    assert "Correct the filter above" in page and '<ul class="errorlist" role="alert">' in page


def test_the_ledger_csv_has_money_and_exact_columns_and_utc_times(entries, member):
    response = member.get("/credits/ledger.csv", {"start": "2026-03-01", "end": "2026-03-01"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["created_at_utc"] == "2026-03-01T00:00:00Z"
    assert (row["amount"], row["amount_exact"]) == ("-3602.17", "-3602.165583333330")
    assert row["balance_after_exact"] == "-3502.165583333330"


def test_a_bad_ledger_csv_range_is_a_400_that_says_why(entries, member):
    response = member.get("/credits/ledger.csv", {"start": "yesterday"})
    assert response.status_code == 400
    assert response.content.decode() == "From: Enter a date as YYYY-MM-DD, e.g. 2026-03-01."


def test_the_last_representable_day_is_a_field_error_not_a_500(entries, member):
    # Its day after, the half-open end the filter reads to, is beyond date.max.
    response = member.get("/credits/ledger.csv", {"start": "9999-12-31", "end": "9999-12-31"})
    assert response.status_code == 400
    assert response.content.decode() == "To: Enter a date before 9999-12-31."


def test_the_ledger_csv_holds_only_the_members_organisation(entries, other_org, make_member, client, time_machine):
    _post(time_machine, other_org, "9", datetime(2026, 3, 5, tzinfo=UTC), "theirs")
    client.force_login(make_member(other_org, "owner").user)
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get("/credits/ledger.csv").streaming_content).decode())))
    assert [r["reason"] for r in rows] == ["test theirs"]
