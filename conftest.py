"""Fixtures shared by every app's tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from accounts.models import Organization
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_api_key

# No per-example deadline: on a shared 2-core machine an example can take longer than
# Hypothesis's 200 ms for reasons that are not the code's (the failure it reports then
# does not reproduce from its own seed).
hypothesis_settings.register_profile("cloudbill", deadline=None)
hypothesis_settings.load_profile("cloudbill")

# Browser tests: fixtures portal_page, browser, live_url (core/tests/browser.py).
pytest_plugins = ["core.tests.browser"]


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup`, with the groups read from the modules (core/tests/xdist_groups.py)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from core.tests.xdist_groups import ModuleGroupScheduling

    return ModuleGroupScheduling(config, log)


def pytest_configure(config):
    """Transactional tests end with the test database emptied (Django's flush: TRUNCATE of
    every table, then post_migrate); core.tests.flush empties only the tables that hold
    rows, the same end state in a tenth of the time."""
    from core.tests import flush

    flush.install()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (login counters, throttles live there)."""
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _force_login_passes_two_factor(monkeypatch):
    """`client.force_login` skips signing in, the second factor included: a staff member
    forced in gets a confirmed device and a verified session, as after the code step.
    Tests of the sign-in itself post to the login and code pages (accounts/tests/
    test_two_factor.py), or call `force_login_password_only`."""
    from django.test.client import ClientMixin

    original = ClientMixin.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        if user.is_staff:
            _verify_session(self, user)

    monkeypatch.setattr(ClientMixin, "force_login", force_login)
    monkeypatch.setattr(ClientMixin, "force_login_password_only", original, raising=False)


def _verify_session(client, user) -> None:
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


@pytest.fixture
def org(db) -> Organization:
    return OrganizationFactory()


@pytest.fixture
def other_org(db) -> Organization:
    return OrganizationFactory()


@pytest.fixture
def make_member(db):
    def _make(organization: Organization, role: str = "owner", **user_kwargs):
        return MembershipFactory(organization=organization, role=role, user=UserFactory(**user_kwargs))

    return _make


@pytest.fixture
def owner(org, make_member):
    return make_member(org, "owner").user


@pytest.fixture
def make_key(db):
    """make_key(org, scopes=None) -> raw bearer key. org=None makes a platform key."""

    def _make(organization: Organization | None, scopes=None) -> str:
        return make_api_key(organization, scopes)[1]

    return _make


@pytest.fixture
def api(db):
    """api(raw_key=None) -> an APIClient, authenticated with the key if given."""

    def _client(raw_key: str | None = None) -> APIClient:
        client = APIClient()
        if raw_key:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        return client

    return _client


@pytest.fixture
def org_api(org, make_key, api) -> APIClient:
    """A client holding a full-scope key of `org`."""
    return api(make_key(org))


@pytest.fixture
def platform_api(make_key, api) -> APIClient:
    return api(make_key(None))
