"""The billing profile's country is one of ISO 3166 and its VAT id passes its country's
check digits (accounts.tax_ids): errors sit on their field; stored rows from before keep
working and are reported."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Organization
from accounts.tax_ids import vat_id_is_valid
from accounts.tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

# A real, valid Dutch VAT number (the Dutch tax office's published example) and German one.
NL_VALID = "NL004495445B01"
DE_VALID = "DE811907980"


def _profile(org: Organization, **changes) -> dict:
    data = {f: getattr(org, f) for f in ("name", "legal_name", "billing_email", "address_line1", "address_line2",
                                          "city", "postal_code", "region", "country", "vat_id")}
    return {**data, **changes}


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def test_an_unknown_country_is_a_field_error_and_nothing_is_saved(signed_in, org):
    response = signed_in.post("/settings/", _profile(org, country="ZZ"))
    assert response.status_code == 200
    assert "country" in response.context["form"].errors
    assert "ZZ" not in (Organization.objects.get(pk=org.pk).country)


def test_a_vat_id_that_fails_its_check_digits_is_an_error_on_the_vat_field(signed_in, org):
    response = signed_in.post("/settings/", _profile(org, country="NL", vat_id="NL123"))
    errors = response.context["form"].errors
    assert list(errors) == ["vat_id"] and "check the digits" in errors["vat_id"][0]
    page = response.content.decode()
    assert 'value="NL123"' in page  # what was typed stays in the field
    assert Organization.objects.get(pk=org.pk).vat_id != "NL123"


def test_a_vat_id_of_another_country_is_refused(signed_in, org):
    response = signed_in.post("/settings/", _profile(org, country="NL", vat_id=DE_VALID))
    assert "must start with NL" in response.context["form"].errors["vat_id"][0]


def test_a_valid_vat_id_is_saved_compact(signed_in, org):
    response = signed_in.post("/settings/", _profile(org, country="NL", vat_id="nl 0044.95445.b01"))
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.country, org.vat_id) == ("NL", NL_VALID)


def test_the_country_field_is_a_list_of_countries(signed_in):
    page = signed_in.get("/settings/").content.decode()
    assert '<select name="country"' in page and '<option value="DE">Germany</option>' in page


def test_a_profile_stored_before_the_rules_keeps_saving_until_its_country_or_vat_id_is_edited(signed_in, org):
    Organization.objects.filter(pk=org.pk).update(country="ZZ", vat_id="NL123")
    assert signed_in.post("/settings/", _profile(Organization.objects.get(pk=org.pk), city="Utrecht")).status_code == 302
    org.refresh_from_db()
    assert (org.city, org.country, org.vat_id) == ("Utrecht", "ZZ", "NL123")
    # The page shows the stored code, marked, rather than silently picking another country.
    assert "ZZ (not a country: choose one)" in signed_in.get("/settings/").content.decode()


def test_the_check_command_reports_stored_profiles_that_fail_and_changes_nothing(org, capsys):
    bad = OrganizationFactory(country="ZZ")
    wrong_vat = OrganizationFactory(country="NL", vat_id="NL123")
    OrganizationFactory(country="NL", vat_id=NL_VALID)
    Organization.objects.filter(pk=bad.pk).update(country="ZZ")
    with pytest.raises(CommandError, match="2 billing profile problem"):
        call_command("billing_profiles_check")
    out = capsys.readouterr().out
    assert f"organization {bad.pk}" in out and f"organization {wrong_vat.pk}" in out
    assert Organization.objects.get(pk=wrong_vat.pk).vat_id == "NL123"


def test_the_api_refuses_a_bad_vat_id_with_a_field_error(org_api):
    response = org_api.patch("/api/v1/organization", {"country": "NL", "vat_id": "NL123"}, format="json")
    assert response.status_code == 400, response.content
    assert "vat_id" in response.json()["error"]["fields"]


@pytest.mark.parametrize(("vat_id", "country", "valid"), [
    (NL_VALID, "NL", True), ("NL123", "NL", False), (DE_VALID, "DE", True), ("DE811907981", "DE", False),
    ("EL094259216", "GR", True), ("", "DE", False), ("CHE-116.281.710 MWST", "CH", True),
])
def test_reverse_charge_needs_a_vat_id_that_passes_its_check_digits(vat_id, country, valid):
    assert vat_id_is_valid(vat_id, country) is valid
