"""Django's own 400 and 403 (a SuspiciousOperation, a BadRequest, a PermissionDenied outside
DRF) answer in the error format under /api/ and with the site's page elsewhere."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from billing_site import urls
from core import views

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _production_like(settings):
    # With DEBUG on Django shows its technical page for a SuspiciousOperation instead.
    settings.DEBUG = False


def _error(response) -> dict:
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


def test_every_error_handler_is_ours():
    assert urls.handler400 == "core.views.bad_request"
    assert urls.handler403 == "core.views.permission_denied"
    assert urls.handler404 == "core.views.page_not_found"
    assert urls.handler500 == "core.views.server_error"


def test_a_host_not_allowed_is_a_400_in_the_error_format_under_the_api(platform_api):
    response = platform_api.get("/api/v1/organizations", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert _error(response)["code"] == "bad_request"


def test_a_host_not_allowed_on_a_portal_page_is_the_sites_400_page(client):
    response = client.get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"Request refused (400)" in response.content


def test_a_multipart_post_with_a_broken_boundary_is_the_sites_400_page(client):
    response = client.generic("POST", "/login/", b"--x\r\nbroken", content_type="multipart/form-data")
    assert response.status_code == 400
    assert b"Request refused (400)" in response.content


def test_too_many_form_fields_is_the_sites_400_page(client, settings):
    body = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.generic("POST", "/login/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert b"Request refused (400)" in response.content


def test_django_permission_denied_under_the_api_is_a_403_in_the_error_format():
    request = RequestFactory().get("/api/v1/organizations")
    response = views.permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert _error(response)["code"] == "permission_denied"


def test_django_permission_denied_on_a_portal_page_is_the_sites_403_page(rf):
    request = rf.get("/credits/")
    response = views.permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
