"""Top-up amounts are ASCII decimal strings matching the schema's pattern, nothing else."""

from __future__ import annotations

import re

import pytest

from credits.models import TopUp

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("amount", ["1E+2", " 10", "10 ", "١٠", "１０", 100, 10.5, "", "+10", "0x10", "NaN"])
def test_a_top_up_amount_outside_the_pattern_is_a_400_field_error(org_api, amount):
    response = org_api.post("/api/v1/credits/topups", {"amount": amount}, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) == {"amount"}
    assert not TopUp.objects.exists()


def test_the_schema_documents_the_same_pattern():
    from drf_spectacular.generators import SchemaGenerator

    from core.api.serializers import MONEY_PATTERN

    schema = SchemaGenerator().get_schema(request=None, public=True)
    field = schema["components"]["schemas"]["TopUpCreateRequest"]["properties"]["amount"]
    assert field["type"] == "string" and field["pattern"] == MONEY_PATTERN
    assert re.fullmatch(MONEY_PATTERN, "100.00") and not re.fullmatch(MONEY_PATTERN, "1E+2")


def test_resume_with_nothing_hibernated_is_a_409_not_hibernated_in_json(org_api):
    response = org_api.post("/api/v1/credits/resume", format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "not_hibernated"
