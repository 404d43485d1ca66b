import threading

import pytest
from django.db import connection

from accounts.models import ApiKey, AuditLog, Organization
from core.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def test_unknown_key_is_401_in_the_error_format(api):
    response = api("cb_aaaaaaaaaaaa_nope").get("/api/v1/organization")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoked_key_is_401(org, make_key, api):
    raw = make_key(org)
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert api(raw).get("/api/v1/organization").status_code == 401


def test_key_secret_is_stored_hashed_and_prefix_visible(org, make_key):
    raw = make_key(org)
    key = ApiKey.objects.get()
    assert raw.startswith(f"cb_{key.prefix}_")
    secret = raw.split("_", 2)[2]
    assert secret not in key.secret_hash and len(key.secret_hash) == 64


def test_key_without_scope_is_403(org, make_key, api):
    raw = make_key(org, scopes=["usage:read"])
    response = api(raw).get("/api/v1/organization")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_customer_key_reads_own_organization(org, org_api):
    response = org_api.get("/api/v1/organization")
    assert response.status_code == 200
    assert response.json()["id"] == org.id


def test_customer_key_gets_404_for_another_organization(org_api, other_org):
    assert org_api.get(f"/api/v1/organizations/{other_org.id}").status_code == 404
    assert org_api.get(f"/api/v1/organizations/{other_org.id}/members").status_code == 404
    ids = [o["id"] for o in org_api.get("/api/v1/organizations").json()["results"]]
    assert other_org.id not in ids


def test_malformed_json_is_400(platform_api):
    response = platform_api.generic("POST", "/api/v1/organizations", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_unknown_and_wrong_typed_fields_are_400_with_field_messages(platform_api):
    response = platform_api.post(
        "/api/v1/organizations", {"name": "X", "colour": "red", "credit_limit": "lots"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert "colour" in body["fields"]
    assert Organization.objects.count() == 0


def test_missing_field_is_400(platform_api):
    response = platform_api.post("/api/v1/organizations", {}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_platform_key_creates_organization_and_audits_it(platform_api):
    response = platform_api.post("/api/v1/organizations", {"name": "New Co", "currency": "EUR"}, format="json")
    assert response.status_code == 201, response.content
    org = Organization.objects.get(name="New Co")
    assert org.currency == "EUR"
    entry = AuditLog.objects.get(action="organization.created")
    assert entry.organization == org and entry.actor_api_key is not None


def test_unknown_currency_is_refused(platform_api):
    response = platform_api.post("/api/v1/organizations", {"name": "New Co", "currency": "XYZ"}, format="json")
    assert response.status_code == 400
    assert "currency" in response.json()["error"]["fields"]


class TestIdempotencyKey:
    def test_replay_returns_the_stored_response_and_writes_once(self, platform_api):
        body = {"name": "Once Co"}
        first = platform_api.post("/api/v1/organizations", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        second = platform_api.post("/api/v1/organizations", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second["Idempotent-Replayed"] == "true"
        assert Organization.objects.filter(name="Once Co").count() == 1

    def test_same_key_with_another_body_is_422(self, platform_api):
        platform_api.post("/api/v1/organizations", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
        response = platform_api.post("/api/v1/organizations", {"name": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert not Organization.objects.filter(name="B").exists()

    def test_failed_validation_stores_nothing(self, platform_api):
        platform_api.post("/api/v1/organizations", {}, format="json", HTTP_IDEMPOTENCY_KEY="k3")
        assert IdempotencyRecord.objects.count() == 0

    def test_keys_are_per_caller(self, make_key, api):
        a, b = api(make_key(None)), api(make_key(None))
        assert a.post("/api/v1/organizations", {"name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201
        assert b.post("/api/v1/organizations", {"name": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="same").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_idempotency_key_write_once(make_key, api):
    raw = make_key(None)
    barrier = threading.Barrier(8)
    statuses = []

    def call():
        try:
            barrier.wait()
            response = api(raw).post("/api/v1/organizations", {"name": "Race Co"}, format="json",
                                     HTTP_IDEMPOTENCY_KEY="race")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [201] * 8
    assert Organization.objects.filter(name="Race Co").count() == 1
