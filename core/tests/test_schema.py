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
