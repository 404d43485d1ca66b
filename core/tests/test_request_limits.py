"""Bodies nested too deep or too large are a 4xx in the one error format, never a 500."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

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


# --- URI and header limits (414, 431) -------------------------------------------------


def test_a_uri_over_the_limit_is_a_414_in_the_error_format(platform_api):
    query = "q=" + "x" * settings.REQUEST_MAX_URI_BYTES
    response = platform_api.get("/api/v1/organizations?" + query)
    assert response.status_code == 414
    assert _error(response)["code"] == "uri_too_long"


def test_a_uri_within_the_limit_is_served(platform_api):
    path = "/api/v1/organizations?q="
    response = platform_api.get(path + "x" * (settings.REQUEST_MAX_URI_BYTES - len(path)))
    assert response.status_code == 200


def test_a_portal_uri_over_the_limit_is_an_html_414(client):
    response = client.get("/accounts/login/?next=" + "x" * settings.REQUEST_MAX_URI_BYTES)
    assert response.status_code == 414
    assert response["Content-Type"].startswith("text/html")
    assert b"Request refused (414)" in response.content


def _header_value(total: int, name: str = "X-Padding") -> str:
    # A header line "Name: value" of `total` bytes.
    return "v" * (total - len(name) - len(": "))


def test_a_header_over_the_limit_is_a_431_in_the_error_format(platform_api):
    value = _header_value(settings.REQUEST_MAX_HEADER_BYTES + 1)
    response = platform_api.get("/api/v1/organizations", HTTP_X_PADDING=value)
    assert response.status_code == 431
    assert _error(response)["code"] == "header_too_large"


def test_a_header_at_the_limit_is_served(platform_api):
    value = _header_value(settings.REQUEST_MAX_HEADER_BYTES)
    response = platform_api.get("/api/v1/organizations", HTTP_X_PADDING=value)
    assert response.status_code == 200


def test_too_many_headers_is_a_431_in_the_error_format(platform_api):
    extra = {f"HTTP_X_H{i}": "1" for i in range(settings.REQUEST_MAX_HEADERS + 1)}
    response = platform_api.get("/api/v1/organizations", **extra)
    assert response.status_code == 431
    assert _error(response)["code"] == "too_many_headers"


def test_a_portal_header_over_the_limit_is_an_html_431(client):
    value = _header_value(settings.REQUEST_MAX_HEADER_BYTES + 1)
    response = client.get("/accounts/login/", HTTP_X_PADDING=value)
    assert response.status_code == 431
    assert response["Content-Type"].startswith("text/html")
    assert b"Request refused (431)" in response.content


def test_a_json_request_outside_the_api_gets_the_error_format(client):
    value = _header_value(settings.REQUEST_MAX_HEADER_BYTES + 1)
    response = client.post("/accounts/login/", "{}", content_type="application/json", HTTP_X_PADDING=value)
    assert response.status_code == 431
    assert _error(response)["code"] == "header_too_large"


def test_gunicorns_limits_are_above_djangos():
    """gunicorn answers its own limits with a bare text page: ours must be met first."""
    namespace: dict = {}
    exec((settings.BASE_DIR / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own file
    assert namespace["limit_request_line"] >= settings.REQUEST_MAX_URI_BYTES + len("OPTIONS  HTTP/1.1")
    assert namespace["limit_request_line"] <= 8190  # gunicorn's maximum
    assert namespace["limit_request_field_size"] >= 2 * settings.REQUEST_MAX_HEADER_BYTES
    assert namespace["limit_request_fields"] >= 2 * settings.REQUEST_MAX_HEADERS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raw_request(port: int, header_bytes: int) -> bytes:
    value = _header_value(header_bytes)
    request = f"GET /api/v1/organizations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {value}\r\nConnection: close\r\n\r\n"
    # The master binds the port before its worker has imported Django: on a busy machine
    # the first answer can take many seconds. A liveness limit, not a timing assertion.
    with socket.create_connection(("127.0.0.1", port), timeout=90) as conn:
        conn.sendall(request.encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_behind_gunicorn_a_9_kb_header_gets_our_431():
    """A real gunicorn, started from the repository root without -c: it reads
    gunicorn.conf.py itself and lets the request through to Django (without the file,
    gunicorn's own bare-text 431)."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "billing_site.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "billing_site.settings.test"},
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        answer = _raw_request(port, 9 * 1024)
    finally:
        server.terminate()
        server.wait(timeout=10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431"), head
    assert b"application/json" in head
    assert b'"header_too_large"' in body
