"""The OpenAPI schema at /api/schema/ is valid, generated without warnings, and says
what every endpoint shares: the auth schemes, the error format, the Idempotency-Key."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("schema") / "schema.yml"
    # --fail-on-warn: any route whose serializer or view confuses the generator fails here.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    return yaml.safe_load(out.read_text())


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_operation_documents_the_error_answers(schema):
    for path, method, operation in _operations(schema):
        for status in ("400", "401", "403", "404"):
            response = operation["responses"][status]
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                f"{method.upper()} {path} lacks {status}"
            )


def test_both_ways_to_authenticate_are_described(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"]["scheme"] == "bearer"
    assert schemes["PortalSession"]["in"] == "cookie"


def test_idempotent_posts_document_the_header_and_the_422(schema):
    create = schema["paths"]["/api/v1/organizations"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    assert "422" in create["responses"]


def test_strict_inputs_refuse_unknown_fields_in_the_schema_too(schema):
    components = schema["components"]["schemas"]
    assert components["OrganizationCreateRequest"]["additionalProperties"] is False
    assert components["PatchedOwnOrganizationRequest"]["additionalProperties"] is False


def test_the_docs_page_serves_its_assets_itself(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert b"cdn" not in page.content.lower() and b"/static/drf_spectacular_sidecar/" in page.content


# --- Answers match the schema, operation by operation ---------------------------------


def _nullable_to_json_schema(node):
    """OpenAPI 3.0's `nullable: true` as JSON Schema's type list, so jsonschema reads it."""
    if isinstance(node, dict):
        node = {k: _nullable_to_json_schema(v) for k, v in node.items()}
        if node.pop("nullable", False):
            if "type" in node:
                node["type"] = [node["type"], "null"]
            else:
                node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable_to_json_schema(v) for v in node]
    return node


def assert_answer_matches_schema(schema: dict, path: str, method: str, response) -> None:
    """The status is one the operation documents, and the body is what it says for it."""
    import jsonschema

    responses = schema["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses, (
        f"{method.upper()} {path} answered {status}; the schema says {sorted(responses)}"
    )
    content = responses[status].get("content")
    if content is None:
        assert response.content == b"", f"{status} has no body in the schema, got {response.content[:200]!r}"
        return
    body_schema = _nullable_to_json_schema(
        {**content["application/json"]["schema"], "components": schema["components"]}
    )
    jsonschema.validate(response.json(), body_schema)


@pytest.mark.django_db
def test_revoking_an_api_key_answers_what_the_schema_says(schema, org_api):
    created = org_api.post("/api/v1/api-keys", {"name": "ci", "scopes": ["account:read"]}, format="json")
    assert created.status_code == 201, created.content
    response = org_api.delete(f"/api/v1/api-keys/{created.json()['id']}")
    # The code's answer: 200 with the revoked key (the row stays for the audit trail).
    assert response.status_code == 200
    assert response.json()["revoked_at"]
    assert_answer_matches_schema(schema, "/api/v1/api-keys/{id}", "delete", response)
    documented = set(schema["paths"]["/api/v1/api-keys/{id}"]["delete"]["responses"])
    assert documented & {"201", "202", "204"} == set()


@pytest.mark.django_db
def test_effective_prices_are_a_plain_list_in_the_code_and_in_the_schema(schema, org_api):
    from datetime import UTC, datetime
    from decimal import Decimal

    from pricing import services
    from pricing.services import PriceSpec
    from pricing.tests.factories import ProductFactory

    product = ProductFactory(code="cpu-4-16", name="CPU 4/16")
    services.price_create(
        spec=PriceSpec(
            product=product,
            currency="USD",
            state="running",
            amount=Decimal("0.12"),
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    response = org_api.get("/api/v1/prices/effective")
    assert response.status_code == 200
    assert isinstance(response.json(), list) and response.json()
    assert_answer_matches_schema(schema, "/api/v1/prices/effective", "get", response)
    operation = schema["paths"]["/api/v1/prices/effective"]["get"]
    assert {p["name"] for p in operation.get("parameters", [])} & {"page", "page_size"} == set()


@pytest.mark.django_db
def test_resume_declares_its_409_in_the_error_format(schema, org_api):
    declared = schema["paths"]["/api/v1/credits/resume"]["post"]["responses"]["409"]
    assert "not_hibernated" in declared["description"]
    assert declared["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    response = org_api.post("/api/v1/credits/resume", format="json")
    assert response.status_code == 409
    assert_answer_matches_schema(schema, "/api/v1/credits/resume", "post", response)


# --- Ergonomics (issue 16, defect 8) ----------------------------------------------------


def _walk(node, where="#"):
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}/{i}")


def test_no_array_leaves_its_items_undocumented(schema):
    bare = [where for where, node in _walk(schema) if node.get("type") == "array" and node.get("items") == {}]
    assert bare == []


def test_each_event_type_is_a_documented_oneof_branch_with_a_valid_example(schema):
    import jsonschema

    from usage.models import EventType

    items = schema["components"]["schemas"]["EventBatchRequest"]["properties"]["events"]["items"]
    assert items["discriminator"]["propertyName"] == "type"
    assert set(items["discriminator"]["mapping"]) == set(EventType.values)
    assert len(items["oneOf"]) == len(EventType.values)
    for event_type, ref in items["discriminator"]["mapping"].items():
        component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert component["properties"]["type"]["enum"] == [event_type]
        assert component["example"]["type"] == event_type
        # The example is an event the branch accepts, and only that branch (oneOf).
        jsonschema.validate([component["example"]],
                            {"type": "array", "items": items, "components": schema["components"]})
    created = schema["components"]["schemas"]["CreatedEvent"]
    assert set(created["required"]) == {"id", "type", "resource", "timestamp", "organization", "product"}
    assert created["additionalProperties"] is False
    assert set(schema["components"]["schemas"]["MeteredEvent"]["required"]) == {
        "id", "type", "resource", "timestamp", "metric", "quantity"}


def test_the_documented_events_are_what_ingest_accepts(schema, platform_api):
    """Each type's example, given a resource and a fresh timestamp, is accepted or refused
    for a business reason (an unknown product, a resource that exists), never for its shape."""
    from datetime import timedelta

    from django.utils import timezone

    components = schema["components"]["schemas"]
    mapping = components["EventBatchRequest"]["properties"]["events"]["items"]["discriminator"]["mapping"]
    stamp = (timezone.now() - timedelta(minutes=1)).isoformat()
    events = [{**components[ref.rsplit("/", 1)[1]]["example"], "id": f"doc-{t}", "timestamp": stamp}
              for t, ref in mapping.items()]
    response = platform_api.post("/api/v1/events", {"events": events}, format="json")
    assert response.status_code == 200
    for result in response.json()["results"]:
        reason = result.get("reason", "")
        assert not reason.startswith(("type:", "timestamp:", "id:", "quantity:")) and "unknown field" not in reason, result


def test_operations_are_grouped_by_area(schema):
    declared = [tag["name"] for tag in schema["tags"]]
    assert declared == ["Organisation and keys", "Webhooks", "Pricing", "Usage", "Credits", "Invoices", "Payments",
                        "Budgets", "Finance",
                        "Platform"]
    used = set()
    for path, method, operation in _operations(schema):
        tags = operation.get("tags", [])
        assert tags and tags[0] in declared[:-1], f"{method.upper()} {path} has no area tag: {tags}"
        used.update(tags)
    assert used == set(declared)
    assert schema["paths"]["/api/v1/invoices"]["get"]["tags"] == ["Invoices"]
    assert schema["paths"]["/api/v1/api-keys"]["get"]["tags"] == ["Organisation and keys"]


def test_platform_only_operations_carry_the_platform_tag_and_every_operation_its_scope(schema):
    assert schema["paths"]["/api/v1/events"]["post"]["tags"] == ["Usage", "Platform"]
    assert schema["paths"]["/api/v1/events"]["post"]["x-required-scope"] == "events:write"
    assert schema["paths"]["/api/v1/invoices/{id}/finalize"]["post"]["tags"] == ["Invoices", "Platform"]
    for path, method, operation in _operations(schema):
        assert operation.get("x-required-scope"), f"{method.upper()} {path} does not say which scope it needs"


def test_the_403_is_documented_with_the_scope_it_names(schema):
    error = schema["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["properties"]["required_scope"]["type"] == "string"
    assert "required_scope" not in error["required"]
    assert "required_scope" in schema["paths"]["/api/v1/invoices"]["get"]["responses"]["403"]["description"]


@pytest.mark.django_db
def test_a_403_answers_what_the_schema_says_and_names_the_scope(schema, org, make_key, api):
    response = api(make_key(org, ["usage:read"])).get("/api/v1/invoices")
    assert response.status_code == 403
    assert_answer_matches_schema(schema, "/api/v1/invoices", "get", response)
    assert response.json()["error"]["required_scope"] == "billing:read"
    assert response.json()["error"]["message"] == "This key lacks the scope billing:read."
