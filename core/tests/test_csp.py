"""A Content-Security-Policy on every page: scripts from 'self' or with the response's
nonce, no inline script or inline event handler in any template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _script_src(response) -> str:
    policy = response.get("Content-Security-Policy", "")
    assert policy, "no Content-Security-Policy header"
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if " " in d.strip())
    return directives["script-src"]


def _assert_strict(response):
    # The nonce is added when a page uses one (request.csp_nonce); 'self' is always there.
    script_src = _script_src(response)
    assert "'self'" in script_src
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src


def test_portal_pages_carry_the_policy(client, owner, org):
    _assert_strict(client.get("/accounts/login/"))
    client.force_login(owner)
    response = client.get(reverse("portal:team"))
    assert response.status_code == 200
    _assert_strict(response)


def test_admin_pages_carry_the_policy(client):
    _assert_strict(client.get("/admin/login/"))


def test_api_docs_carry_the_policy_and_their_scripts_the_nonce(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    _assert_strict(response)
    assert "'nonce-" in _script_src(response)
    nonce = re.search(r"'nonce-([^']+)'", _script_src(response)).group(1)
    html = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts), scripts


def _templates() -> list[Path]:
    root = Path(settings.BASE_DIR)
    return [
        p
        for p in root.rglob("templates/**/*.html")
        if ".venv" not in p.parts and "node_modules" not in p.parts
    ]


def test_no_template_has_an_inline_script_without_a_nonce_or_an_event_handler_attribute():
    offenders = []
    for path in _templates():
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and "nonce=" not in tag:
                offenders.append(f"{path}: {tag}")
        for attr in re.findall(r"<[a-zA-Z][^>]*\s(on[a-z]+)\s*=", text):
            offenders.append(f"{path}: {attr}=")
    assert not offenders, offenders


def test_the_confirm_text_of_a_key_name_is_not_script(client, owner, org, make_key):
    from accounts.models import ApiKey

    make_key(org)
    ApiKey.objects.update(name="x');alert(1);('")
    client.force_login(owner)
    html = client.get(reverse("portal:api_keys")).content.decode()
    assert "onsubmit" not in html and "data-confirm=" in html
