"""Fixtures shared by every app's tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import Organization
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_api_key


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (login counters, throttles live there)."""
    cache.clear()
    yield


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
