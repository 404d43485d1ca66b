"""core.sqlrows: model instances from bare SQL equal what the ORM loads."""

from __future__ import annotations

import pytest
from django.core.exceptions import MultipleObjectsReturned

from accounts.models import ApiKey, Organization
from accounts.tests.factories import OrganizationFactory, make_api_key
from core import sqlrows

pytestmark = pytest.mark.django_db


def test_get_loads_every_field_as_the_orm_does_converters_included():
    key, _raw = make_api_key(None, scopes=["admission:check", "reports:read"])
    mine = sqlrows.get(ApiKey, "t.id = %s", [key.pk])
    theirs = ApiKey.objects.get(pk=key.pk)
    assert mine is not None and mine._state.adding is False and mine._state.db == "default"
    assert mine.scopes == ["admission:check", "reports:read"]  # jsonb text turned into a list
    assert {f.attname: getattr(mine, f.attname) for f in ApiKey._meta.concrete_fields} == {
        f.attname: getattr(theirs, f.attname) for f in ApiKey._meta.concrete_fields}


def test_none_for_no_row_or_a_null_primary_key_and_an_error_for_two_rows():
    OrganizationFactory(country="DE")
    OrganizationFactory(country="DE")
    assert sqlrows.get(Organization, "t.slug = %s", ["no-such"]) is None
    assert sqlrows.instance(Organization, [None] * sqlrows.width(Organization)) is None
    with pytest.raises(MultipleObjectsReturned):
        sqlrows.get(Organization, "t.country = %s", ["DE"])
