"""The Credits page's auto top-up form: a refused value is an error on its own field, in
words, with what was typed kept; its fields never share an id with the top-up form's."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from credits.models import AutoTopUpSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def test_no_id_appears_twice_on_the_credits_page(signed_in):
    page = signed_in.get("/credits/").content.decode()
    ids = Counter(re.findall(r'\sid="([^"]+)"', page))
    assert [i for i, n in ids.items() if n > 1] == []
    assert 'id="id_auto-amount"' in page
    # Every label points at a field that exists.
    assert set(re.findall(r'<label for="([^"]+)"', page)) <= set(ids)


def test_a_refused_value_is_an_error_on_its_field_and_the_typed_values_stay(signed_in):
    response = signed_in.post("/credits/auto-top-up", {"auto-enabled": "on", "auto-threshold": "abc",
                                                      "auto-amount": "250", "auto-monthly_cap": ""})
    assert response.status_code == 400
    form = response.context["auto_form"]
    assert list(form.errors) == ["threshold"]
    page = response.content.decode()
    assert 'value="abc"' in page and 'value="250"' in page
    # Said on the field, not as a banner naming the raw field.
    assert "threshold:" not in page
    assert not AutoTopUpSettings.objects.exists()


def test_a_rule_of_the_service_lands_on_its_field(signed_in):
    response = signed_in.post("/credits/auto-top-up", {"auto-enabled": "on", "auto-threshold": "20",
                                                      "auto-amount": "100", "auto-monthly_cap": "50"})
    assert response.status_code == 400
    assert response.context["auto_form"].errors["monthly_cap"] == ["The monthly cap must allow at least one top-up."]
    assert 'value="50"' in response.content.decode()


def test_a_valid_form_saves_and_returns_to_the_page(signed_in, org):
    response = signed_in.post("/credits/auto-top-up", {"auto-enabled": "on", "auto-threshold": "20",
                                                      "auto-amount": "100", "auto-monthly_cap": ""})
    assert response.status_code == 302
    assert AutoTopUpSettings.objects.get(organization=org).enabled
