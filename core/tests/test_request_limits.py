"""Bodies nested too deep or too large are a 4xx in the one error format, never a 500."""

from __future__ import annotations

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_json_nested_too_deep_is_a_400(platform_api, depth):
    body = "[" * depth + "]" * depth
    response = platform_api.generic("POST", "/api/v1/organizations", body, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "parse_error"


def test_json_nested_within_the_limit_is_parsed(platform_api):
    body = '{"name": "Deep", "country": "DE", "x": ' + "[" * 30 + "]" * 30 + "}"
    response = platform_api.generic("POST", "/api/v1/organizations", body, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["fields"] == {"x": ["Unknown field."]}


def test_the_body_limit_is_set_explicitly():
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 2_621_440


def test_a_body_over_the_limit_is_a_413_in_the_error_format(platform_api):
    body = '{"name": "' + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + '"}'
    response = platform_api.generic("POST", "/api/v1/organizations", body, content_type="application/json")
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"


def test_a_form_post_over_the_limit_is_an_html_413(client):
    body = "x=" + "y" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.generic(
        "POST", "/accounts/login/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"Request refused (413)" in response.content
