"""Web security that lives in settings and the URL conf: deploy checks, fail-fast
production settings, and CSRF exemptions only where a signature protects instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

ROOT = Path(__file__).resolve().parents[2]
GOOD_PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "k3y-" + "x9Qa7#Lm2v!R8tZp" * 4,
    "DJANGO_ALLOWED_HOSTS": "billing.example.com",
    "DATABASE_URL": "postgres://billing@db.internal:5432/billing",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def _run(args: list[str], settings_module: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k not in GOOD_PRODUCTION_ENV}
    clean |= {"DJANGO_SETTINGS_MODULE": settings_module, **env}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_in_production_settings():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], "billing_site.settings.production",
                  GOOD_PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("missing", "override", "message"),
    [
        ("DJANGO_SECRET_KEY", None, "DJANGO_SECRET_KEY must be set"),
        (None, {"DJANGO_SECRET_KEY": "insecure-dev-key-change-me" * 3}, "DJANGO_SECRET_KEY must be set"),
        (None, {"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY must be set"),
        ("DJANGO_ALLOWED_HOSTS", None, "DJANGO_ALLOWED_HOSTS must name"),
        ("DATABASE_URL", None, "DATABASE_URL must point"),
    ],
    ids=["no secret key", "the development key", "a short key", "no allowed hosts", "no database"],
)
def test_production_settings_refuse_to_start_without_real_secrets(missing, override, message):
    env = {k: v for k, v in GOOD_PRODUCTION_ENV.items() if k != missing} | (override or {})
    result = _run(["-c", "import django; django.setup()"], "billing_site.settings.production", env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_development_settings_print_emails_to_the_console():
    result = _run(["-c", "import django; django.setup(); from django.conf import settings; print(settings.EMAIL_BACKEND)"],
                  "billing_site.settings.local", {"REDIS_URL": "redis://localhost:6379/15"})
    assert result.stdout.strip() == "core.mail.EmailBackend", result.stderr


def _walk(resolver: URLResolver, namespace: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else (entry.namespace or namespace)
            yield from _walk(entry, ns)
        elif isinstance(entry, URLPattern):
            yield (f"{namespace}:{entry.name}" if namespace else entry.name or str(entry.pattern)), entry.callback


def _skips_csrf(callback) -> bool:
    view_class = getattr(callback, "cls", None)
    if view_class is not None and issubclass(view_class, APIView):
        # DRF marks every view csrf_exempt and checks CSRF itself, inside its
        # SessionAuthentication. A view is protected when it reads the session only
        # through that (unmodified) class; key-only authentication needs no cookie.
        authenticators = view_class.authentication_classes
        session_based = [a for a in authenticators if issubclass(a, SessionAuthentication)]
        csrf_disabled = any(a.enforce_csrf is not SessionAuthentication.enforce_csrf for a in session_based)
        return csrf_disabled or not authenticators
    return getattr(callback, "csrf_exempt", False)


def test_only_listed_views_skip_csrf():
    exempt = sorted({name for name, callback in _walk(get_resolver()) if _skips_csrf(callback)})
    unexpected = [name for name in exempt if name not in settings.CSRF_EXEMPT_VIEWS]
    assert unexpected == [], (
        f"These views skip CSRF: {unexpected}. Only signature-verified webhooks may, and they are listed in "
        f"settings.CSRF_EXEMPT_VIEWS."
    )


def test_the_csrf_walker_sees_the_api_and_would_catch_an_exemption():
    from django.views.decorators.csrf import csrf_exempt

    views = dict(_walk(get_resolver()))
    assert "own-organization" in views and not _skips_csrf(views["own-organization"])
    assert _skips_csrf(csrf_exempt(lambda request: None))

    class NoSession(APIView):
        authentication_classes: list = []

    assert _skips_csrf(NoSession.as_view())
