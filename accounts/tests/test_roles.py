"""What each role may do, in the portal and through the API, and the owner rules."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AuditLog, Invitation, Membership, Organization
from accounts.scopes import ROLE_SCOPES, Role
from accounts.tenancy import membership_caller
from accounts.tests.factories import MembershipFactory
from core.errors import Conflict, Forbidden

pytestmark = pytest.mark.django_db

OWNER, ADMIN, BILLING, VIEWER = Role.OWNER, Role.ADMIN, Role.BILLING, Role.VIEWER


def _portal_client(client, org, make_member, role):
    membership = make_member(org, role)
    client.force_login(membership.user)
    return client, membership


# --- The portal ---------------------------------------------------------------------

READABLE_PAGES = ["portal:dashboard", "portal:team", "portal:api_keys", "portal:settings"]


@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize("page", READABLE_PAGES)
def test_every_role_reads_the_shell_pages(client, org, make_member, role, page):
    _portal_client(client, org, make_member, role)
    assert client.get(reverse(page)).status_code == 200


# (page, form data, roles allowed)
PORTAL_WRITES = [
    ("portal:team", {"email": "new@example.com", "role": VIEWER}, {OWNER, ADMIN}),
    ("portal:settings", {"name": "Renamed", "country": "DE"}, {OWNER, ADMIN, BILLING}),
    ("portal:api_keys", {"name": "ci", "scopes": ["usage:read"]}, {OWNER, ADMIN}),
]


@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize(("page", "data", "allowed"), PORTAL_WRITES, ids=[w[0] for w in PORTAL_WRITES])
def test_portal_writes_follow_the_role(client, org, make_member, role, page, data, allowed):
    _portal_client(client, org, make_member, role)
    audit_before = AuditLog.objects.count()
    response = client.post(reverse(page), data)
    if role in allowed:
        assert response.status_code == 302, response.content[:500]
        assert AuditLog.objects.count() == audit_before + 1
    else:
        assert response.status_code == 403
        assert AuditLog.objects.count() == audit_before


def test_navigation_shows_only_pages_the_role_may_open(client, org, make_member, settings):
    settings.PORTAL_NAV = [*settings.PORTAL_NAV, ("Members only", "portal:team", "members:write", "users")]
    _portal_client(client, org, make_member, VIEWER)
    labels = [item["label"] for item in client.get(reverse("portal:dashboard")).context["nav_items"]()]
    assert "Team" in labels and "Members only" not in labels
    # Apps that have not installed their page yet are left out rather than broken links.
    assert all(client.get(reverse("portal:dashboard")).status_code == 200 for _ in labels[:1])


def test_viewer_sees_the_billing_profile_read_only(client, org, make_member):
    _portal_client(client, org, make_member, VIEWER)
    response = client.get(reverse("portal:settings"))
    assert not response.context["can_edit"]
    assert all(field.disabled for field in response.context["form"].fields.values())


def test_a_user_without_organisation_sees_an_explanation_not_an_error(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("loner@example.com", "x" * 12))
    response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 403
    assert b"No organisation yet" in response.content


def test_switching_organisation_only_to_one_you_belong_to(client, org, other_org, make_member):
    client, membership = _portal_client(client, org, make_member, VIEWER)
    third = Organization.objects.create(name="Third", slug="third")
    MembershipFactory(user=membership.user, organization=other_org, role=BILLING)
    response = client.post(reverse("portal:switch_organization"), {"organization": other_org.pk})
    assert response.status_code == 302
    assert client.get(reverse("portal:dashboard")).context["current_org"] == other_org
    assert client.post(reverse("portal:switch_organization"), {"organization": third.pk}).status_code == 404
    assert client.get(reverse("portal:dashboard")).context["current_org"] == other_org


# --- The API, by session and by key ---------------------------------------------------

# (method, path template, body, scope the action needs)
API_ACTIONS = [
    ("get", "/api/v1/organization", None, "account:read"),
    ("patch", "/api/v1/organization", {"city": "Porto"}, "account:write"),
    ("get", "/api/v1/organizations/{org}/members", None, "account:read"),
    ("post", "/api/v1/organizations/{org}/members", {"email": "x@example.com", "role": VIEWER}, "members:write"),
    ("get", "/api/v1/api-keys", None, "account:read"),
    ("post", "/api/v1/api-keys", {"name": "k", "scopes": ["usage:read"]}, "api_keys:write"),
]


@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize(("method", "path", "body", "scope"), API_ACTIONS, ids=[f"{a[0]} {a[1]}" for a in API_ACTIONS])
def test_api_actions_by_session_follow_the_role(org, make_member, role, method, path, body, scope):
    client = APIClient()
    client.force_login(make_member(org, role).user)
    response = getattr(client, method)(path.format(org=org.pk), body, format="json")
    if scope in ROLE_SCOPES[role]:
        assert response.status_code in (200, 201, 202), response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(("method", "path", "body", "scope"), API_ACTIONS, ids=[f"{a[0]} {a[1]}" for a in API_ACTIONS])
def test_api_keys_hold_exactly_their_scopes(org, make_key, api, method, path, body, scope):
    # A key that hands out scopes (in a new key, or a member's role) must hold them too.
    handed_out = set((body or {}).get("scopes", [])) | ROLE_SCOPES.get((body or {}).get("role"), frozenset())
    allowed = api(make_key(org, sorted({scope} | handed_out)))
    refused = api(make_key(org, sorted(ROLE_SCOPES[OWNER] - {scope})))
    path = path.format(org=org.pk)
    assert getattr(allowed, method)(path, body, format="json").status_code in (200, 201, 202)
    assert getattr(refused, method)(path, body, format="json").status_code == 403


def test_customers_cannot_change_staff_only_terms(org, org_api):
    response = org_api.patch("/api/v1/organization", {"credit_limit": "1000000", "billing_mode": "postpaid"},
                             format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "billing_mode": ["This field is read-only."], "credit_limit": ["This field is read-only."],
    }
    org.refresh_from_db()
    assert org.billing_mode == "prepaid" and org.credit_limit == 0


def test_platform_key_changes_terms_of_any_organisation(org, platform_api):
    response = platform_api.patch(f"/api/v1/organizations/{org.pk}", {"credit_limit": "2500.50",
                                                                     "billing_mode": "postpaid"}, format="json")
    assert response.status_code == 200, response.content
    org.refresh_from_db()
    assert str(org.credit_limit) == "2500.500000000000" and org.billing_mode == "postpaid"
    assert AuditLog.objects.filter(action="organization.updated", organization=org).exists()


# --- Owners ---------------------------------------------------------------------------


@pytest.fixture
def team(org, make_member):
    return {role: make_member(org, role) for role in (OWNER, ADMIN, BILLING, VIEWER)}


def test_admin_manages_billing_and_viewer_members(team):
    services.membership_change_role(membership=team[VIEWER], role=BILLING, by=membership_caller(team[ADMIN]))
    services.membership_remove(membership=team[BILLING], by=membership_caller(team[ADMIN]))
    assert Membership.objects.get(pk=team[VIEWER].pk).role == BILLING
    assert not Membership.objects.filter(pk=team[BILLING].pk).exists()


@pytest.mark.parametrize(
    "attempt",
    [
        lambda t: services.membership_change_role(membership=t[OWNER], role=VIEWER, by=membership_caller(t[ADMIN])),
        lambda t: services.membership_remove(membership=t[OWNER], by=membership_caller(t[ADMIN])),
        lambda t: services.membership_change_role(membership=t[VIEWER], role=OWNER, by=membership_caller(t[ADMIN])),
        lambda t: services.membership_change_role(membership=t[ADMIN], role=OWNER, by=membership_caller(t[ADMIN])),
        lambda t: services.invitation_create(organization=t[OWNER].organization, email="o@example.com", role=OWNER,
                                             by=membership_caller(t[ADMIN])),
    ],
    ids=["demote an owner", "remove an owner", "promote to owner", "promote self to owner", "invite an owner"],
)
def test_admin_cannot_touch_or_make_owners(team, attempt):
    with pytest.raises(Forbidden):
        attempt(team)
    assert Membership.objects.get(pk=team[OWNER].pk).role == OWNER
    assert Membership.objects.filter(role=OWNER).count() == 1
    assert not Invitation.objects.exists()


def test_admin_is_refused_over_the_api_with_403(org, team):
    client = APIClient()
    client.force_login(team[ADMIN].user)
    owner = team[OWNER]
    response = client.patch(f"/api/v1/organizations/{org.pk}/members/{owner.pk}", {"role": VIEWER}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Only an owner can make, change or remove owners."
    assert client.delete(f"/api/v1/organizations/{org.pk}/members/{owner.pk}").status_code == 403


def test_admin_is_refused_in_the_portal_with_a_message(client, team):
    client.force_login(team[ADMIN].user)
    response = client.post(reverse("portal:member_remove", args=[team[OWNER].pk]), follow=True)
    assert "Only an owner can make, change or remove owners." in response.content.decode()
    assert Membership.objects.filter(pk=team[OWNER].pk).exists()


def test_owner_promotes_and_then_steps_down(team):
    owner = team[OWNER]
    services.membership_change_role(membership=team[ADMIN], role=OWNER, by=membership_caller(owner))
    services.membership_change_role(membership=owner, role=VIEWER, by=membership_caller(owner))
    assert list(Membership.objects.filter(role=OWNER)) == [Membership.objects.get(pk=team[ADMIN].pk)]
    assert AuditLog.objects.filter(action="member.role_changed").count() == 2


def test_the_last_owner_cannot_be_demoted_or_removed(team):
    owner = team[OWNER]
    with pytest.raises(Conflict, match="at least one owner"):
        services.membership_change_role(membership=owner, role=ADMIN, by=membership_caller(owner))
    with pytest.raises(Conflict, match="at least one owner"):
        services.membership_remove(membership=owner, by=membership_caller(owner))
    assert Membership.objects.get(pk=owner.pk).role == OWNER


def test_the_last_owner_is_a_409_over_the_api(org, team):
    client = APIClient()
    client.force_login(team[OWNER].user)
    response = client.delete(f"/api/v1/organizations/{org.pk}/members/{team[OWNER].pk}")
    assert response.status_code == 409
    assert response.json()["error"] == {"code": "conflict", "message": "An organisation needs at least one owner.",
                                        "fields": {}}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["demote", "remove"])
def test_two_owners_stepping_down_at_once_leave_one_owner(org, make_member, how):
    """Each owner removes (or demotes) the other at the same instant, on separate
    connections. Without the organisation lock both would see two owners and succeed."""
    a, b = make_member(org, OWNER), make_member(org, OWNER)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def step_down(target: Membership, actor: Membership) -> None:
        try:
            barrier.wait()
            if how == "demote":
                services.membership_change_role(membership=target, role=VIEWER, by=membership_caller(actor))
            else:
                services.membership_remove(membership=target, by=membership_caller(actor))
            outcomes.append("done")
        except Conflict:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=step_down, args=(a, b)), threading.Thread(target=step_down, args=(b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["done", "refused"]
    assert Membership.objects.filter(organization=org, role=OWNER).count() == 1


# --- Staff through the API ---------------------------------------------------------------


@pytest.mark.parametrize(("group", "may_write"), [("Support (read-only)", False), ("Billing admin", True)])
def test_staff_sessions_act_across_organisations_as_their_group_allows(org, other_org, group, may_write):
    from django.contrib.auth.models import Group

    from accounts.tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = APIClient()
    client.force_login(user)
    listed = {row["id"] for row in client.get("/api/v1/organizations").json()["results"]}
    assert {org.pk, other_org.pk} <= listed
    response = client.patch(f"/api/v1/organizations/{other_org.pk}", {"payment_terms_days": 30}, format="json")
    assert response.status_code == (200 if may_write else 403)
    assert Organization.objects.get(pk=other_org.pk).payment_terms_days == (30 if may_write else 14)


def test_staff_without_a_group_get_nothing_through_the_api(org):
    from accounts.tests.factories import UserFactory

    client = APIClient()
    client.force_login(UserFactory(is_staff=True))
    assert client.get(f"/api/v1/organizations/{org.pk}").status_code == 403
    assert client.get("/api/v1/organizations").status_code == 403
