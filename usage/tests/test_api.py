from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.scopes import ORGANIZATION_SCOPES
from usage import metering, rollups
from usage.ingest import MAX_BATCH
from usage.tests.conftest import at
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(org, clock, platform_api):
    product = ProductFactory(code="cpu-4")
    add_price(product, "1.20", valid_from=at(0, 0, day=(2026, 1, 1)))
    response = platform_api.post("/api/v1/events", {"events": [
        {"id": "e1", "type": "created", "resource": "srv-1", "timestamp": "2026-03-10T10:00:00Z",
         "organization": org.pk, "product": "cpu-4", "name": "web"},
        {"id": "e2", "type": "started", "resource": "srv-1", "timestamp": "2026-03-10T10:17:00Z"},
        {"id": "e3", "type": "stopped", "resource": "srv-1", "timestamp": "2026-03-10T13:42:00Z"},
    ]}, format="json")
    assert response.status_code == 200, response.json()
    metering.meter_pass(until=at(14, 0))
    rollups.rollup_pending()
    return product


def test_platform_posts_a_batch_and_gets_a_result_per_event(org, clock, platform_api, fleet):
    response = platform_api.post("/api/v1/events", {"events": [
        {"id": "e2", "type": "started", "resource": "srv-1", "timestamp": "2026-03-10T10:17:00Z"},
        {"id": "e9", "type": "started", "resource": "srv-1"},
    ]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 1, 1)
    assert body["results"][1] == {"id": "e9", "status": "rejected",
                                  "reason": "timestamp: this field is required (ISO 8601 with a time zone)."}


def test_a_batch_envelope_that_is_wrong_is_a_400_in_the_error_format(platform_api, db):
    too_many = [{"id": str(n)} for n in range(MAX_BATCH + 1)]
    for body in ({"events": []}, {"events": too_many}, {"events": [], "extra": 1}, [1, 2]):
        response = platform_api.post("/api/v1/events", body, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"


def test_customers_cannot_send_events(org, make_key, api, db):
    response = api(make_key(org, ORGANIZATION_SCOPES)).post("/api/v1/events", {"events": [{"id": "x"}]},
                                                             format="json")
    assert response.status_code == 403


def test_customer_reads_resources_history_and_usage(org, org_api, fleet):
    resources = org_api.get("/api/v1/resources").json()["results"]
    assert [(r["external_id"], r["state"], r["product"]) for r in resources] == [("srv-1", "stopped", "cpu-4")]
    history = org_api.get(f"/api/v1/resources/{resources[0]['id']}/history").json()["results"]
    assert [(h["state"], h["start"], h["end"]) for h in history] == [
        ("provisioning", "2026-03-10T10:00:00Z", "2026-03-10T10:17:00Z"),
        ("running", "2026-03-10T10:17:00Z", "2026-03-10T13:42:00Z"),
        ("stopped", "2026-03-10T13:42:00Z", None),
    ]
    hours = org_api.get("/api/v1/usage", {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z",
                                          "granularity": "hour"}).json()
    assert [(p["period"], p["minutes"], Decimal(p["amount"])) for p in hours["results"]] == [
        ("2026-03-10T10:00:00Z", 43, Decimal("0.86")), ("2026-03-10T11:00:00Z", 60, Decimal("1.20")),
        ("2026-03-10T12:00:00Z", 60, Decimal("1.20")), ("2026-03-10T13:00:00Z", 42, Decimal("0.84"))]
    days = org_api.get("/api/v1/usage", {"start": "2026-03-01T00:00:00Z", "end": "2026-04-01T00:00:00Z",
                                         "granularity": "day", "product": "cpu-4"}).json()
    assert [(p["period"], p["minutes"], Decimal(p["amount"])) for p in days["results"]] == [
        ("2026-03-10T00:00:00Z", 205, Decimal("4.10"))]
    # Minute granularity is the rated detail by its first minute (one row per pass and hour).
    minutes = org_api.get("/api/v1/usage", {"start": "2026-03-10T13:00:00Z", "end": "2026-03-10T14:00:00Z",
                                            "granularity": "minute"}).json()
    assert [(p["period"], p["minutes"]) for p in minutes["results"]] == [("2026-03-10T13:00:00Z", 42)]
    mtd = org_api.get("/api/v1/usage/month-to-date").json()
    assert (Decimal(mtd["amount"]), mtd["currency"], mtd["by_product"]) == (
        Decimal("4.10"), "USD", {"cpu-4": "4.100000000000"})


def test_another_organisations_resource_is_a_404(org, other_org, make_key, api, fleet):
    other = api(make_key(other_org))
    resource_id = fleet and org.resources.get().pk
    assert other.get(f"/api/v1/resources/{resource_id}").status_code == 404
    assert other.get(f"/api/v1/resources/{resource_id}/history").status_code == 404
    assert other.get("/api/v1/resources").json()["results"] == []
    response = other.get("/api/v1/usage", {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z",
                                           "resource": resource_id})
    assert response.status_code == 404


def test_bad_usage_queries_are_400_with_field_messages(org_api, db):
    response = org_api.get("/api/v1/usage", {"start": "2026-03-10T00:00:00Z", "end": "2026-03-09T00:00:00Z"})
    assert response.status_code == 400 and "end" in response.json()["error"]["fields"]
    response = org_api.get("/api/v1/usage", {"start": "2026-01-01T00:00:00Z", "end": "2026-03-09T00:00:00Z",
                                             "granularity": "minute"})
    assert response.status_code == 400 and "granularity" in response.json()["error"]["fields"]
    response = org_api.get("/api/v1/usage", {"start": "yesterday", "end": "2026-03-09T00:00:00Z", "colour": "red"})
    assert set(response.json()["error"]["fields"]) == {"start", "colour"}


def _documented(schema: dict, path: str, method: str, status: str) -> dict:
    """The JSON schema of one documented answer, refs resolvable, OpenAPI 3.0's
    `nullable` turned into JSON Schema."""

    def convert(node):
        if isinstance(node, dict):
            node = {k: convert(v) for k, v in node.items()}
            if node.pop("nullable", False) and "type" in node:
                node["type"] = [node["type"], "null"]
            return node
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node

    answer = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return convert({**answer, "components": schema["components"]})


def test_the_usage_answer_matches_its_documented_schema(org, org_api, fleet):
    """The schema documented a bare list of points; the answer is {granularity, currency, results}."""
    import jsonschema
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    response = org_api.get("/api/v1/usage", {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z",
                                             "granularity": "hour"})
    assert response.status_code == 200
    body = response.json()
    assert body["results"] and body["currency"] == "USD"
    jsonschema.validate(body, _documented(schema, "/api/v1/usage", "get", "200"))


def test_resource_history_and_usage_filters_never_reveal_another_organisations_resource(
    org, other_org, clock, platform_api, org_api, fleet
):
    """Another organisation's resource id, or filter values naming it (organisation, external
    id, state), answer like a resource of no row and never show its intervals."""
    response = platform_api.post("/api/v1/events", {"events": [
        {"id": "b1", "type": "created", "resource": "srv-b", "timestamp": "2026-03-10T09:00:00Z",
         "organization": other_org.pk, "product": "cpu-4", "name": "theirs"},
        {"id": "b2", "type": "started", "resource": "srv-b", "timestamp": "2026-03-10T09:30:00Z"},
    ]}, format="json")
    assert response.json()["accepted"] == 2
    theirs = other_org.resources.get()
    own = org.resources.get()
    nowhere = 2_000_000_000

    def answer(url, params=None):
        response = org_api.get(url, params or {})
        body = response.json()
        if isinstance(body.get("error"), dict):
            body["error"].pop("message", None)
        return response.status_code, body

    assert answer(f"/api/v1/resources/{theirs.pk}/history") == answer(f"/api/v1/resources/{nowhere}/history")
    assert answer(f"/api/v1/resources/{theirs.pk}/history")[0] == 404
    for params in ({"organization": other_org.pk}, {"external_id": "srv-b"}, {"state": "running"},
                   {"kind": theirs.kind}, {"organization": other_org.pk, "external_id": "srv-b"}):
        assert answer(f"/api/v1/resources/{theirs.pk}/history", params)[0] == 404, params
        status, body = answer(f"/api/v1/resources/{own.pk}/history", params)
        assert status in (200, 404), (params, status)
        if status == 200:
            assert {row["start"] for row in body["results"]} <= {"2026-03-10T10:00:00Z", "2026-03-10T10:17:00Z",
                                                                 "2026-03-10T13:42:00Z"}, params
        listed = org_api.get("/api/v1/resources", params).json()
        assert theirs.pk not in {row["id"] for row in listed.get("results", [])}, params
    span = {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z", "granularity": "hour"}
    assert answer("/api/v1/usage", {**span, "resource": theirs.pk}) == answer("/api/v1/usage", {**span, "resource": nowhere})
    mine = answer("/api/v1/usage", {**span, "organization": other_org.pk})
    assert mine[0] == 404 and mine == answer("/api/v1/usage", {**span, "organization": nowhere})
    assert answer("/api/v1/usage/month-to-date", {"organization": other_org.pk}) == answer(
        "/api/v1/usage/month-to-date", {"organization": nowhere})
