"""Nobody grants a scope or a role they do not hold (issue 12, finding 1).

A key made by a member carries at most the member's scopes, and what it may do follows
the member: less when their role drops, nothing once they leave. The owner rules (who
may make, change or remove an owner; the last owner stays) hold the same in the portal,
for a session on the API and for a key, which acts with its maker's role.

These tests go through HTTP, as the outside attacker did.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey, AuditLog, Invitation, Membership
from accounts.scopes import ORGANIZATION_SCOPES, Role
from accounts.tenancy import membership_caller
from credits.models import TopUp

pytestmark = pytest.mark.django_db

OWNER, ADMIN, BILLING, VIEWER = Role.OWNER, Role.ADMIN, Role.BILLING, Role.VIEWER
ALL_ORG_SCOPES = sorted(ORGANIZATION_SCOPES)


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def key_made_by(user, scopes) -> str:
    """A key the member makes for themselves through the API, as the portal would."""
    response = session(user).post("/api/v1/api-keys", {"name": "made", "scopes": sorted(scopes)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["key"]


CO_OWNER = "co-owner"


@pytest.fixture
def team(org, make_member):
    """One member of each role, and a second owner: so an owner being demoted or removed is
    stopped by the owner rules, not by the rule that the last owner stays."""
    return {role: make_member(org, role) for role in (OWNER, ADMIN, BILLING, VIEWER)} | {
        CO_OWNER: make_member(org, OWNER)
    }


# --- A key holding only api_keys:write -------------------------------------------------


def test_a_key_cannot_create_a_key_with_scopes_it_does_not_hold(team):
    narrow = bearer(key_made_by(team[OWNER].user, ["api_keys:write"]))
    keys_before = ApiKey.objects.count()
    response = narrow.post("/api/v1/api-keys", {"name": "wide", "scopes": ALL_ORG_SCOPES}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert "account:read" in response.json()["error"]["message"]
    assert ApiKey.objects.count() == keys_before
    # What it holds, it may pass on.
    same = narrow.post("/api/v1/api-keys", {"name": "same", "scopes": ["api_keys:write"]}, format="json")
    assert same.status_code == 201, same.content


def test_a_platform_key_cannot_create_an_organisation_key_with_scopes_it_does_not_hold(org, make_key):
    platform = bearer(make_key(None, ["api_keys:write"]))
    response = platform.post(f"/api/v1/api-keys?organization={org.pk}", {"name": "wide", "scopes": ALL_ORG_SCOPES},
                             format="json")
    assert response.status_code == 403, response.content
    assert not ApiKey.objects.filter(organization=org).exists()


def _escalate(narrow: APIClient) -> APIClient:
    """The attack: make a key with every organisation scope. Refused now; on the old code
    it answered 201 and the new key is what did the harm."""
    response = narrow.post("/api/v1/api-keys", {"name": "wide", "scopes": ALL_ORG_SCOPES}, format="json")
    return bearer(response.json()["key"]) if response.status_code == 201 else narrow


HARMS = {
    "top up credit": (
        lambda org, team: ("post", "/api/v1/credits/topups", {"amount": "500.00"}),
        lambda org, team: not TopUp.objects.filter(organization=org).exists(),
    ),
    "invite an owner": (
        lambda org, team: ("post", f"/api/v1/organizations/{org.pk}/members",
                           {"email": "mallory@example.com", "role": OWNER}),
        lambda org, team: not Invitation.objects.filter(email="mallory@example.com").exists(),
    ),
    "promote a viewer to owner": (
        lambda org, team: ("patch", f"/api/v1/organizations/{org.pk}/members/{team[VIEWER].pk}", {"role": OWNER}),
        lambda org, team: Membership.objects.get(pk=team[VIEWER].pk).role == VIEWER,
    ),
}


@pytest.mark.parametrize("harm", HARMS)
def test_a_key_holding_only_api_keys_write_cannot_escalate(org, team, harm):
    request, unharmed = HARMS[harm]
    client = _escalate(bearer(key_made_by(team[OWNER].user, ["api_keys:write"])))
    method, path, body = request(org, team)
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code == 403, response.content
    assert unharmed(org, team)


# --- An admin, through a key it just made -------------------------------------------------

# Each owner action as (method, path, body), for the organisation and the team.
OWNER_ACTIONS = {
    "demote an owner": lambda org, t: ("patch", f"/api/v1/organizations/{org.pk}/members/{t[OWNER].pk}",
                                       {"role": VIEWER}),
    "remove an owner": lambda org, t: ("delete", f"/api/v1/organizations/{org.pk}/members/{t[OWNER].pk}", None),
    "promote a viewer to owner": lambda org, t: ("patch", f"/api/v1/organizations/{org.pk}/members/{t[VIEWER].pk}",
                                                 {"role": OWNER}),
    "promote itself to owner": lambda org, t: ("patch", f"/api/v1/organizations/{org.pk}/members/{t[ADMIN].pk}",
                                               {"role": OWNER}),
    "invite an owner": lambda org, t: ("post", f"/api/v1/organizations/{org.pk}/members",
                                       {"email": "o@example.com", "role": OWNER}),
}


def _owners_untouched(org, team) -> bool:
    return (
        set(Membership.objects.filter(organization=org, role=OWNER).values_list("pk", flat=True))
        == {team[OWNER].pk, team[CO_OWNER].pk}
        and not Invitation.objects.filter(role=OWNER).exists()
    )


@pytest.mark.parametrize("action", OWNER_ACTIONS)
def test_an_admin_cannot_touch_owners_through_a_key_it_made(org, team, action):
    client = bearer(key_made_by(team[ADMIN].user, ALL_ORG_SCOPES))
    method, path, body = OWNER_ACTIONS[action](org, team)
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["error"]["message"] == "Only an owner can make, change or remove owners."
    assert _owners_untouched(org, team)


@pytest.mark.parametrize("action", OWNER_ACTIONS)
def test_an_owners_key_acts_as_the_owner(org, team, action):
    client = bearer(key_made_by(team[OWNER].user, ALL_ORG_SCOPES))
    method, path, body = OWNER_ACTIONS[action](org, team)
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code in (200, 201, 202, 204), response.content


def test_a_key_holding_only_members_write_cannot_make_an_owner(org, team):
    """Making an owner hands out every organisation scope: the key must hold them."""
    client = bearer(key_made_by(team[OWNER].user, ["members:write"]))
    response = client.patch(f"/api/v1/organizations/{org.pk}/members/{team[VIEWER].pk}", {"role": OWNER},
                            format="json")
    assert response.status_code == 403, response.content
    assert "billing:write" in response.json()["error"]["message"]
    assert _owners_untouched(org, team)


def test_the_last_owner_stays_through_their_own_key(org, team):
    team[CO_OWNER].delete()
    client = bearer(key_made_by(team[OWNER].user, ALL_ORG_SCOPES))
    response = client.patch(f"/api/v1/organizations/{org.pk}/members/{team[OWNER].pk}", {"role": ADMIN},
                            format="json")
    assert response.status_code == 409
    assert client.delete(f"/api/v1/organizations/{org.pk}/members/{team[OWNER].pk}").status_code == 409
    assert Membership.objects.get(pk=team[OWNER].pk).role == OWNER


# --- The same owner rules in every channel ---------------------------------------------------


def _portal(t, action):
    """The portal form for each owner action: (url name, args, data)."""
    return {
        "demote an owner": ("portal:member_role", [t[OWNER].pk], {"role": VIEWER}),
        "remove an owner": ("portal:member_remove", [t[OWNER].pk], {}),
        "promote a viewer to owner": ("portal:member_role", [t[VIEWER].pk], {"role": OWNER}),
        "promote itself to owner": ("portal:member_role", [t[ADMIN].pk], {"role": OWNER}),
        "invite an owner": ("portal:team", [], {"email": "o@example.com", "role": OWNER}),
    }[action]


@pytest.mark.parametrize("channel", ["portal", "api session", "api key"])
@pytest.mark.parametrize("action", OWNER_ACTIONS)
def test_admins_are_refused_owner_actions_in_every_channel(client, org, team, channel, action):
    audit_before = AuditLog.objects.filter(action__startswith="member.").count()
    if channel == "portal":
        client.force_login(team[ADMIN].user)
        name, args, data = _portal(team, action)
        response = client.post(reverse(name, args=args), data, follow=True)
        assert "Only an owner can make, change or remove owners." in response.content.decode()
    else:
        api = session(team[ADMIN].user) if channel == "api session" else bearer(
            key_made_by(team[ADMIN].user, ALL_ORG_SCOPES))
        method, path, body = OWNER_ACTIONS[action](org, team)
        response = getattr(api, method)(path, body, format="json")
        assert response.status_code == 403, response.content
    assert _owners_untouched(org, team)
    assert AuditLog.objects.filter(action__startswith="member.").count() == audit_before


# --- A key follows its maker -------------------------------------------------------------------


def test_a_keys_scopes_shrink_when_its_makers_role_drops(org, team):
    client = bearer(key_made_by(team[OWNER].user, ALL_ORG_SCOPES))
    # Changed anywhere (here straight in the table, as the console does): the key follows.
    Membership.objects.filter(pk=team[OWNER].pk).update(role=BILLING)
    assert client.post(f"/api/v1/organizations/{org.pk}/members", {"email": "x@example.com", "role": VIEWER},
                       format="json").status_code == 403
    assert client.post("/api/v1/credits/topups", {"amount": "10.00"}, format="json").status_code == 201
    Membership.objects.filter(pk=team[OWNER].pk).update(role=VIEWER)
    assert client.post("/api/v1/credits/topups", {"amount": "10.00"}, format="json").status_code == 403
    assert client.get("/api/v1/credits/balance").status_code == 200
    # Back up again, back again: the key holds what it was made with, its maker decides how much counts.
    Membership.objects.filter(pk=team[OWNER].pk).update(role=OWNER)
    assert client.post("/api/v1/credits/topups", {"amount": "10.00"}, format="json").status_code == 201


def test_a_key_made_by_an_admin_loses_owner_powers_it_never_had_and_members_write_on_demotion(org, team):
    client = bearer(key_made_by(team[ADMIN].user, ALL_ORG_SCOPES))
    Membership.objects.filter(pk=team[ADMIN].pk).update(role=VIEWER)
    response = client.patch(f"/api/v1/organizations/{org.pk}/members/{team[BILLING].pk}", {"role": VIEWER},
                            format="json")
    assert response.status_code == 403
    assert Membership.objects.get(pk=team[BILLING].pk).role == BILLING


def test_a_key_stops_working_when_its_maker_leaves(org, team):
    raw = key_made_by(team[ADMIN].user, ALL_ORG_SCOPES)
    assert bearer(raw).get("/api/v1/organization").status_code == 200
    session(team[OWNER].user).delete(f"/api/v1/organizations/{org.pk}/members/{team[ADMIN].pk}")
    response = bearer(raw).get("/api/v1/organization")
    assert response.status_code == 401
    # Invited back, the person is a new member: the old key stays dead.
    Membership.objects.create(organization=org, user=team[ADMIN].user, role=ADMIN)
    assert bearer(raw).get("/api/v1/organization").status_code == 401


def test_a_key_stops_working_when_its_maker_is_deactivated(org, team):
    raw = key_made_by(team[ADMIN].user, ALL_ORG_SCOPES)
    team[ADMIN].user.is_active = False
    team[ADMIN].user.save(update_fields=["is_active"])
    assert bearer(raw).get("/api/v1/organization").status_code == 401


def test_a_new_key_records_its_maker_even_when_a_key_made_it(team):
    raw = key_made_by(team[ADMIN].user, ["api_keys:write", "account:read"])
    response = bearer(raw).post("/api/v1/api-keys", {"name": "child", "scopes": ["account:read"]}, format="json")
    assert response.status_code == 201
    child = ApiKey.objects.get(pk=response.json()["id"])
    assert child.created_by == team[ADMIN].user
    audit = AuditLog.objects.get(action="api_key.created", object_id=str(child.pk))
    assert audit.actor_api_key is not None and audit.actor_api_key.name == "made"


# --- An invitation grants its role when accepted ---------------------------------------------


def _invited_by(membership, email: str, role: str) -> str:
    """The invitation's one-time token (only ever emailed; stored hashed)."""
    return services.invitation_create(organization=membership.organization, email=email, role=role,
                                      by=membership_caller(membership))[1]


def test_an_invitation_from_someone_who_may_no_longer_grant_its_role_is_refused(client, team):
    token = _invited_by(team[ADMIN], "late@example.com", ADMIN)
    Membership.objects.filter(pk=team[ADMIN].pk).update(role=VIEWER)
    page = client.post(reverse("accept_invitation", args=[token]), {"password": "a long passphrase"})
    assert "may no longer grant this role" in page.content.decode()
    assert not Membership.objects.filter(user__email="late@example.com").exists()


def test_an_invitation_from_someone_still_allowed_is_accepted(client, team):
    token = _invited_by(team[ADMIN], "soon@example.com", BILLING)
    client.post(reverse("accept_invitation", args=[token]), {"password": "a long passphrase"})
    assert Membership.objects.get(user__email="soon@example.com").role == BILLING
