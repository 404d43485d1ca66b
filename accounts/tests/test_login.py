"""Signing in: throttled against guessing, CSRF on every portal form, password reset by email."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AuditLog, Organization
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # UserFactory's


def _sign_in(client, email, password=PASSWORD):
    return client.post(reverse("login"), {"username": email, "password": password})


def test_signing_in_with_the_right_password(client, owner):
    response = _sign_in(client, owner.email)
    assert response.status_code == 302 and response["Location"] == reverse("portal:dashboard")
    assert client.session[SESSION_KEY] == str(owner.pk)


def test_repeated_failures_lock_the_account_even_against_the_right_password(client, owner, settings):
    for _ in range(settings.LOGIN_MAX_FAILURES):
        assert _sign_in(client, owner.email, "wrong password").status_code == 200
    response = _sign_in(client, owner.email)
    assert response.status_code == 200
    assert "Too many failed sign-ins. Try again in 15 minutes" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_the_lockout_is_per_email_and_ends(client, owner, settings, django_user_model):
    other = UserFactory()
    for _ in range(settings.LOGIN_MAX_FAILURES):
        _sign_in(client, owner.email, "wrong password")
    assert _sign_in(client, other.email).status_code == 302  # someone else from the same address
    from django.core.cache import cache

    cache.clear()  # what LOGIN_LOCKOUT_SECONDS does
    assert _sign_in(Client(), owner.email).status_code == 302


def test_a_success_clears_the_failures(client, owner, settings):
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        _sign_in(client, owner.email, "wrong password")
    assert _sign_in(client, owner.email).status_code == 302
    client.logout()
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        _sign_in(client, owner.email, "wrong password")
    assert _sign_in(client, owner.email).status_code == 302


def test_one_address_guessing_many_accounts_is_locked_out(client, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    users = [UserFactory() for _ in range(4)]
    for user in users[:3]:
        _sign_in(client, user.email, "wrong password")
    assert _sign_in(client, users[3].email).status_code == 200
    assert _sign_in(Client(REMOTE_ADDR="10.0.0.9"), users[3].email).status_code == 302


def test_emails_are_matched_case_insensitively(client, owner):
    assert _sign_in(client, owner.email.upper()).status_code == 302


def test_password_reset_sends_a_working_link(client, owner):
    response = client.post(reverse("password_reset"), {"email": owner.email})
    assert response.status_code == 302
    [email] = mail.outbox
    link = re.search(r"http://testserver(/reset/\S+/)", email.body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and form_page.context["validlink"]
    done = client.post(form_page.redirect_chain[-1][0],
                       {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("a brand new passphrase")


def test_password_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and mail.outbox == []


class TestCsrf:
    @pytest.fixture
    def csrf_client(self, owner):
        client = Client(enforce_csrf_checks=True)
        client.force_login(owner)
        return client

    @pytest.mark.parametrize(
        ("url_name", "data"),
        [
            ("portal:team", {"email": "x@example.com", "role": "viewer"}),
            ("portal:settings", {"name": "Changed"}),
            ("portal:api_keys", {"name": "k", "scopes": ["usage:read"]}),
            ("logout", {}),
        ],
    )
    def test_portal_forms_need_the_token(self, csrf_client, url_name, data):
        audit_before = AuditLog.objects.count()
        assert csrf_client.post(reverse(url_name), data).status_code == 403
        assert AuditLog.objects.count() == audit_before
        csrf_client.get(reverse("portal:dashboard"))
        token = csrf_client.cookies["csrftoken"].value
        assert csrf_client.post(reverse(url_name), {**data, "csrfmiddlewaretoken": token}).status_code == 302

    def test_the_login_form_needs_the_token(self, owner):
        client = Client(enforce_csrf_checks=True)
        assert _sign_in(client, owner.email).status_code == 403

    def test_session_api_writes_need_the_token(self, org, owner):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(owner)
        refused = client.patch("/api/v1/organization", {"city": "Lyon"}, format="json")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "permission_denied"
        assert "CSRF" in refused.json()["error"]["message"]
        assert Organization.objects.get(pk=org.pk).city != "Lyon"
        client.get(reverse("portal:dashboard"))
        token = client.cookies["csrftoken"].value
        accepted = client.patch("/api/v1/organization", {"city": "Lyon"}, format="json", HTTP_X_CSRFTOKEN=token)
        assert accepted.status_code == 200

    def test_session_api_reads_and_key_writes_need_no_token(self, org, owner, make_key):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(owner)
        assert client.get("/api/v1/organization").status_code == 200
        keyed = APIClient(enforce_csrf_checks=True)
        keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(org)}")
        assert keyed.patch("/api/v1/organization", {"city": "Lyon"}, format="json").status_code == 200


def test_behind_trusted_proxies_the_address_the_outermost_one_saw_is_throttled(client, settings):
    """Behind a balancer every request comes from its address: counting REMOTE_ADDR would
    lock everyone out together. A client's own X-Forwarded-For entries are not trusted."""
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    settings.TRUSTED_PROXY_COUNT = 1
    users = [UserFactory() for _ in range(4)]
    attacker = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    for user in users[:3]:
        _sign_in(attacker, user.email, "wrong password")
    assert _sign_in(attacker, users[3].email).status_code == 200  # locked out
    # Forging a left-hand entry does not help: the balancer appends the real address.
    forged = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7")
    assert _sign_in(forged, users[3].email).status_code == 200
    # Another customer behind the same balancer signs in.
    assert _sign_in(Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.2"),
                    users[3].email).status_code == 302


@pytest.fixture
def redis_down(settings):
    """The cache (login counters) on a closed port, as when Redis is down (Django resets
    its cache handler when the setting changes)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}


def test_signing_in_while_redis_is_down_is_a_503_page_with_retry_after(client, owner, redis_down):
    response = _sign_in(client, owner.email)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert response["Content-Type"].startswith("text/html")
    assert SESSION_KEY not in client.session


def test_an_api_request_while_redis_is_down_is_a_503_in_the_error_format(rf, redis_down):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from core.middleware import RedisOutageMiddleware

    request = rf.post("/api/v1/anything")
    response = RedisOutageMiddleware(lambda r: None).process_exception(request, RedisConnectionError("down"))
    assert response.status_code == 503 and response["Retry-After"]
    import json

    assert json.loads(response.content)["error"]["code"] == "service_unavailable"
