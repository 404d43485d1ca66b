from decimal import Decimal

import pytest

from credits import services
from credits.models import LedgerEntry, TopUp

pytestmark = pytest.mark.django_db


def test_balance_shows_paid_promotional_burn_and_runway(org, org_api, credit):
    credit("48.00")
    from credits.models import Balance

    Balance.objects.filter(organization=org).update(burn_rate_per_hour=Decimal("2"))
    body = org_api.get("/api/v1/credits/balance").json()
    assert Decimal(body["balance"]) == Decimal("48") and body["currency"] == "USD"
    assert Decimal(body["runway_hours"]) == Decimal("24")
    assert body["runway_text"] == "about 24 hours left at your current usage"


def test_platform_reads_any_balance_but_a_customer_only_their_own(org, other_org, org_api, platform_api, credit):
    credit("5", organization=other_org)
    assert Decimal(platform_api.get(f"/api/v1/credits/balance?organization={other_org.pk}").json()["balance"]) == 5
    assert org_api.get(f"/api/v1/credits/balance?organization={other_org.pk}").status_code == 404


def test_ledger_is_cursor_paginated_newest_first_and_filterable(org, org_api, credit):
    for n in range(5):
        credit(str(n + 1))
    services.ledger_post(organization=org, amount=Decimal("-1"), kind="usage", reason="usage")
    page = org_api.get("/api/v1/credits/ledger?page_size=4").json()
    assert [Decimal(r["amount"]) for r in page["results"]] == [Decimal("-1"), 5, 4, 3]
    assert page["next"] and "cursor=" in page["next"]
    rest = org_api.get(page["next"]).json()
    assert [Decimal(r["amount"]) for r in rest["results"]] == [2, 1]
    usage = org_api.get("/api/v1/credits/ledger?kind=usage").json()["results"]
    assert len(usage) == 1 and usage[0]["actor"] == {"type": "system"}


def test_another_organizations_ledger_entry_is_a_404(org_api, other_org, credit):
    entry = credit("5", organization=other_org)
    assert org_api.get(f"/api/v1/credits/ledger/{entry.pk}").status_code == 404
    assert org_api.get("/api/v1/credits/ledger").json()["results"] == []


def test_staff_adjustment_needs_credits_write_and_a_reason(org, org_api, platform_api):
    denied = org_api.post("/api/v1/credits/adjustments", {"amount": "10", "reason": "free money"}, format="json")
    assert denied.status_code == 403
    missing = platform_api.post("/api/v1/credits/adjustments", {"organization": org.pk, "amount": "10"},
                                format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["fields"]
    blank = platform_api.post("/api/v1/credits/adjustments",
                              {"organization": org.pk, "amount": "10", "reason": "  "}, format="json")
    assert blank.status_code == 400
    ok = platform_api.post("/api/v1/credits/adjustments",
                           {"organization": org.pk, "amount": "10.50", "reason": "SLA credit, ticket 42"},
                           format="json")
    assert ok.status_code == 201, ok.content
    assert ok.json()["actor"]["type"] == "api_key"
    assert LedgerEntry.objects.get().amount == Decimal("10.50")


def test_api_adjustments_follow_the_consoles_precision_and_staff_limit(org, platform_api, settings):
    settings.CREDITS_ADJUSTMENT_STAFF_LIMITS = {"default": Decimal("5000")}
    fine = platform_api.post("/api/v1/credits/adjustments",
                             {"organization": org.pk, "amount": "10.001", "reason": "SLA credit, ticket 42"},
                             format="json")
    assert fine.status_code == 400 and "amount" in fine.json()["error"]["fields"]
    big = platform_api.post("/api/v1/credits/adjustments",
                            {"organization": org.pk, "amount": "-99999999", "reason": "SLA credit, ticket 42"},
                            format="json")
    assert big.status_code == 403 and "superuser" in big.json()["error"]["message"]
    assert not LedgerEntry.objects.exists()


def test_promotional_grant_through_the_api(org, platform_api):
    response = platform_api.post("/api/v1/credits/promotional-grants", {
        "organization": org.pk, "amount": "25", "reason": "launch promo", "expires_at": "2030-01-01T00:00:00Z",
    }, format="json")
    assert response.status_code == 201, response.content
    assert Decimal(response.json()["remaining"]) == Decimal("25")


def test_a_duplicate_top_up_key_charges_once(org, org_api, django_capture_on_commit_callbacks):
    headers = {"HTTP_IDEMPOTENCY_KEY": "topup-7f3a"}
    with django_capture_on_commit_callbacks(execute=True):
        first = org_api.post("/api/v1/credits/topups", {"amount": "100.00"}, format="json", **headers)
    with django_capture_on_commit_callbacks(execute=True):
        again = org_api.post("/api/v1/credits/topups", {"amount": "100.00"}, format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert TopUp.objects.count() == 1
    assert [e.amount for e in LedgerEntry.objects.all()] == [Decimal("100.00")]
    reused = org_api.post("/api/v1/credits/topups", {"amount": "999.00"}, format="json", **headers)
    assert reused.status_code == 422
    assert TopUp.objects.count() == 1


def test_a_top_up_with_bad_input_is_a_400_with_field_messages(org_api):
    response = org_api.post("/api/v1/credits/topups", {"amount": "-5", "colour": "red"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) >= {"colour"}
    assert not TopUp.objects.exists()


def test_auto_top_up_settings_round_trip(org_api):
    response = org_api.put("/api/v1/credits/auto-topup",
                           {"enabled": True, "threshold": "20", "amount": "100", "monthly_cap": "300"}, format="json")
    assert response.status_code == 200, response.content
    body = org_api.get("/api/v1/credits/auto-topup").json()
    assert body["enabled"] is True and Decimal(body["monthly_cap"]) == Decimal("300")
    refused = org_api.put("/api/v1/credits/auto-topup",
                          {"enabled": True, "threshold": "20", "amount": "100", "monthly_cap": "50"}, format="json")
    assert refused.status_code == 400 and "monthly_cap" in refused.json()["error"]["fields"]
