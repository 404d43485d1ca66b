"""API keys: shown once, stored hashed, found by prefix, scoped, revocable, last use noted."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import keys, services
from accounts.models import ApiKey, ApiKeyKind, AuditLog, Membership
from accounts.scopes import ORGANIZATION_SCOPES, PLATFORM_SCOPES
from accounts.tests.factories import make_api_key
from core.errors import DomainError
from core.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def test_the_key_is_prefix_and_secret_and_only_the_secrets_hash_is_stored(org):
    key, raw = make_api_key(org)
    material = keys.parse(raw)
    assert raw == f"cb_{key.prefix}_{material.secret}"
    assert len(key.prefix) == keys.PREFIX_LENGTH
    assert key.secret_hash == hashlib.sha256(material.secret.encode()).hexdigest()
    assert material.secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert key.display_prefix == f"cb_{key.prefix}_…"


def test_two_keys_never_share_a_prefix_or_secret(org):
    made = [make_api_key(org)[1] for _ in range(20)]
    assert len({keys.parse(r).prefix for r in made}) == len({keys.parse(r).secret for r in made}) == 20


@pytest.mark.parametrize("raw", ["", "cb_", "cb_short_secret", "xx_aaaaaaaaaaaa_secret", "cb_aaaaaaaaaaaa_"])
def test_malformed_keys_do_not_parse(raw):
    assert keys.parse(raw) is None


def test_the_right_prefix_with_a_wrong_secret_is_refused(org, api):
    key, raw = make_api_key(org)
    forged = f"cb_{key.prefix}_{'x' * 40}"
    response = api(forged).get("/api/v1/organization")
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "authentication_failed", "message": "Unknown or revoked API key.",
                                        "fields": {}}
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_is_refused_at_once(org, api):
    key, raw = make_api_key(org)
    assert api(raw).get("/api/v1/organization").status_code == 200
    services.api_key_revoke(api_key=key, actor=None)
    assert api(raw).get("/api/v1/organization").status_code == 401
    assert AuditLog.objects.filter(action="api_key.revoked", object_id=str(key.pk)).count() == 1


def test_revoking_twice_changes_nothing_the_second_time(org):
    key, _raw = make_api_key(org)
    first = services.api_key_revoke(api_key=key, actor=None).revoked_at
    assert services.api_key_revoke(api_key=key, actor=None).revoked_at == first
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1


def test_a_key_of_a_deactivated_organisation_is_refused(org, api):
    _key, raw = make_api_key(org)
    org.is_active = False
    org.save()
    assert api(raw).get("/api/v1/organization").status_code == 401


def test_last_used_is_touched_at_most_once_a_minute(org, api, django_assert_num_queries):
    key, raw = make_api_key(org)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        services.api_key_authenticate(raw)
    key.refresh_from_db()
    assert key.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=59), tick=False):
        with django_assert_num_queries(1):  # the lookup, no write
            services.api_key_authenticate(raw)
    key.refresh_from_db()
    assert key.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        services.api_key_authenticate(raw)
    key.refresh_from_db()
    assert key.last_used_at == start + timedelta(seconds=61)


def test_organisation_keys_hold_only_organisation_scopes(org):
    with pytest.raises(DomainError) as exc:
        make_api_key(org, scopes=["account:read", "credits:write"])
    assert exc.value.field == "scopes" and "credits:write" in exc.value.message
    assert not ApiKey.objects.exists()


def test_platform_keys_may_hold_any_scope_and_act_across_organisations(org, other_org, api):
    key, raw = make_api_key(None, scopes=["account:read"])
    assert key.kind == ApiKeyKind.PLATFORM and key.organization is None
    ids = {o["id"] for o in api(raw).get("/api/v1/organizations").json()["results"]}
    assert {org.pk, other_org.pk} <= ids
    # Narrow: reading is not writing.
    assert api(raw).post("/api/v1/organizations", {"name": "Nope"}, format="json").status_code == 403


def test_a_platform_key_has_no_own_organisation(api):
    _key, raw = make_api_key(None, scopes=sorted(PLATFORM_SCOPES))
    response = api(raw).get("/api/v1/organization")
    assert response.status_code == 404
    assert "does not belong to one organisation" in response.json()["error"]["message"]


def test_unknown_scopes_are_refused(org):
    with pytest.raises(DomainError):
        make_api_key(None, scopes=["everything"])


def test_create_platform_key_command_prints_the_key_once(capsys):
    call_command("create_platform_key", "provisioning", "--scope", "events:write", "--scope", "resources:write")
    out = capsys.readouterr().out
    key = ApiKey.objects.get(name="provisioning")
    assert key.kind == ApiKeyKind.PLATFORM and key.scopes == ["events:write", "resources:write"]
    assert f"cb_{key.prefix}_" in out


class TestThroughTheApi:
    def test_creating_returns_the_full_key_once_and_lists_only_the_prefix(self, org, org_api, api):
        response = org_api.post("/api/v1/api-keys", {"name": "terraform", "scopes": ["usage:read"]}, format="json")
        assert response.status_code == 201
        raw = response.json()["key"]
        assert api(raw).get("/api/v1/api-keys").status_code == 403  # usage:read only
        listed = org_api.get("/api/v1/api-keys").json()["results"]
        assert all("key" not in row and "secret_hash" not in row for row in listed)
        assert {row["display_prefix"] for row in listed} >= {f"cb_{keys.parse(raw).prefix}_…"}

    def test_an_idempotent_replay_never_shows_or_stores_the_secret(self, org_api):
        body = {"name": "ci", "scopes": ["usage:read"]}
        first = org_api.post("/api/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
        again = org_api.post("/api/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
        assert first.json()["key"].startswith("cb_")
        assert again.status_code == 201 and again.json()["key"] is None
        assert again.json()["id"] == first.json()["id"]
        assert ApiKey.objects.filter(name="ci").count() == 1
        assert first.json()["key"] not in str(IdempotencyRecord.objects.values().get())

    def test_revoking_over_the_api_returns_the_revoked_key(self, org, org_api, api):
        key, raw = make_api_key(org, scopes=["account:read"])
        response = org_api.delete(f"/api/v1/api-keys/{key.pk}")
        assert response.status_code == 200 and response.json()["revoked_at"]
        assert api(raw).get("/api/v1/organization").status_code == 401

    def test_a_session_creates_keys_for_its_own_organisation_only(self, org, other_org, owner):
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_login(owner)
        response = client.post(f"/api/v1/api-keys?organization={other_org.pk}", {"name": "x",
                               "scopes": ["usage:read"]}, format="json")
        assert response.status_code == 404
        assert not ApiKey.objects.filter(organization=other_org).exists()


class TestInThePortal:
    def test_a_new_key_is_shown_once(self, client, org, owner):
        client.force_login(owner)
        response = client.post(reverse("portal:api_keys"), {"name": "monitoring",
                                                             "scopes": ["usage:read", "billing:read"]}, follow=True)
        raw = response.context["new_key"]["key"]
        key = ApiKey.objects.get(name="monitoring")
        assert raw.startswith(f"cb_{key.prefix}_") and raw in response.content.decode()
        assert key.scopes == ["billing:read", "usage:read"]
        again = client.get(reverse("portal:api_keys"))
        assert raw not in again.content.decode() and key.display_prefix in again.content.decode()

    def test_a_key_without_scopes_is_refused_with_a_field_message(self, client, owner):
        client.force_login(owner)
        response = client.post(reverse("portal:api_keys"), {"name": "empty"})
        assert response.status_code == 200 and response.context["form"].errors["scopes"]
        assert not ApiKey.objects.exists()

    def test_only_organisation_scopes_are_offered(self, client, owner):
        client.force_login(owner)
        offered = {value for value, _label in client.get(reverse("portal:api_keys")).context["form"]
                   .fields["scopes"].choices}
        assert offered == set(ORGANIZATION_SCOPES)

    def test_revoking_in_the_portal(self, client, org, owner, api):
        key, raw = make_api_key(org)
        client.force_login(owner)
        client.post(reverse("portal:api_key_revoke", args=[key.pk]))
        assert api(raw).get("/api/v1/organization").status_code == 401


def test_the_bare_key_lookup_reads_what_the_orm_reads(org, other_org, make_member):
    """api_key_authenticate reads the key, its organisation, its maker and the maker's
    role in one bare statement (core.sqlrows); the ORM's select_related query with
    tenancy.key_maker_membership's subquery is the reference it must agree with."""
    from django.db.models import OuterRef, Subquery

    from accounts.tenancy import key_maker_membership, person_caller

    owner = make_member(org, "owner").user
    admin = make_member(org, "admin").user
    made = {
        "platform": make_api_key(None)[0],
        "no maker": make_api_key(org)[0],
        "owner's": services.api_key_create(name="o", scopes=["account:read"], organization=org,
                                           by=person_caller(owner, org))[0],
        "admin's": services.api_key_create(name="a", scopes=["account:read"], organization=org,
                                           by=person_caller(admin, org))[0],
    }
    leaver = make_member(org, "admin").user
    made["left and came back"] = services.api_key_create(name="l", scopes=["account:read"], organization=org,
                                                         by=person_caller(leaver, org))[0]
    leaver.memberships.all().delete()
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        make_member(org, "owner", email=leaver.email + ".other")
        Membership.objects.create(user=leaver, organization=org, role="owner")  # begun after the key
        Membership.objects.create(user=owner, organization=other_org, role="viewer")  # elsewhere
    admin.memberships.update(role="viewer")  # the role now counts, not the one the key was made with
    role = key_maker_membership(maker=OuterRef("created_by_id"), organization=OuterRef("organization_id"),
                                made_at=OuterRef("created_at")).values("role")[:1]
    seen = set()
    for label, key in made.items():
        reference = (ApiKey.objects.select_related("organization", "created_by")
                     .annotate(maker_role=Subquery(role)).get(pk=key.pk))
        found, maker_role = services._key_by_prefix(key.prefix)
        assert maker_role == reference.maker_role, label
        seen.add(maker_role)
        for mine, theirs in ((found, reference), (found.organization, reference.organization),
                             (found.created_by, reference.created_by)):
            if theirs is None:
                assert mine is None, label
                continue
            for f in type(theirs)._meta.concrete_fields:
                assert getattr(mine, f.attname) == getattr(theirs, f.attname), (label, f.name)
        assert found.scopes == ["account:read"] or label in ("platform", "no maker"), label
    assert seen == {None, "owner", "viewer"}
    assert services._key_by_prefix("nosuchprefix") is None
