"""Invitations: emailed link, accepted by a new or a signed-in user, once, in time."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import AuditLog, Invitation, Membership, User
from accounts.scopes import Role
from accounts.tenancy import membership_caller
from accounts.tests.factories import UserFactory
from core.errors import Conflict, DomainError

pytestmark = pytest.mark.django_db


def as_member(user, org):
    return membership_caller(Membership.objects.get(user=user, organization=org))


@pytest.fixture
def invite(org, owner, django_capture_on_commit_callbacks):
    """invite(email, role=viewer) -> the one-time token, after the email went out."""

    def _invite(email: str = "new.person@example.com", role: str = Role.VIEWER) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            _inv, token = services.invitation_create(
                organization=org, email=email, role=role, by=as_member(owner, org),
                accept_url_builder=lambda path: f"https://portal.example{path}",
            )
        return token

    return _invite


def test_inviting_from_the_team_page_emails_a_link_that_opens_the_invitation(
    client, org, owner, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("portal:team"), {"email": "New.Person@Example.com", "role": Role.BILLING})
    assert response.status_code == 302
    [email] = mail.outbox
    assert email.to == ["new.person@example.com"]
    assert org.name in email.subject
    link = re.search(r"http://testserver(/invitations/\S+)", email.body).group(1)
    client.logout()
    page = client.get(link)
    assert page.status_code == 200
    assert f"Join {org.name}" in page.content.decode()
    invitation = Invitation.objects.get()
    assert invitation.role == Role.BILLING and invitation.status == "pending"
    assert link.rsplit("/", 1)[1] not in invitation.token_hash  # only the hash is stored
    assert AuditLog.objects.filter(action="invitation.created", organization=org).count() == 1


def test_the_email_is_sent_only_after_the_invitation_commits(org, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.invitation_create(organization=org, email="a@example.com", role=Role.VIEWER, by=as_member(owner, org))
    assert mail.outbox == [] and len(callbacks) == 1


def test_a_new_user_accepts_by_choosing_a_password_and_is_signed_in(client, org, invite):
    token = invite(role=Role.BILLING)
    response = client.post(reverse("accept_invitation", args=[token]),
                           {"full_name": "New Person", "password": "a long passphrase"})
    assert response.status_code == 302 and response["Location"] == reverse("portal:dashboard")
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password("a long passphrase") and user.full_name == "New Person"
    assert Membership.objects.get(user=user).role == Role.BILLING
    assert client.get(reverse("portal:dashboard")).context["current_org"] == org
    assert Invitation.objects.get().status == "accepted"


def test_a_weak_password_is_refused_and_nothing_is_created(client, invite):
    token = invite()
    response = client.post(reverse("accept_invitation", args=[token]), {"password": "1234567890"})
    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert not User.objects.filter(email="new.person@example.com").exists()
    assert Invitation.objects.get().status == "pending"


def test_a_signed_in_existing_user_accepts_with_one_click(client, org, invite):
    user = UserFactory(email="new.person@example.com")
    token = invite(role=Role.ADMIN)
    client.force_login(user)
    response = client.post(reverse("accept_invitation", args=[token]))
    assert response.status_code == 302
    assert Membership.objects.get(user=user, organization=org).role == Role.ADMIN


def test_an_existing_user_who_is_not_signed_in_is_asked_to_sign_in(client, invite):
    UserFactory(email="new.person@example.com")
    token = invite()
    response = client.post(reverse("accept_invitation", args=[token]), {"password": "a long passphrase"})
    assert "sign in first" in response.content.decode()
    assert not Membership.objects.filter(user__email="new.person@example.com").exists()


def test_the_wrong_signed_in_user_cannot_accept(client, invite):
    token = invite()
    client.force_login(UserFactory(email="someone.else@example.com"))
    response = client.post(reverse("accept_invitation", args=[token]))
    assert response.status_code == 200
    assert "This invitation is for new.person@example.com" in response.content.decode()
    assert Invitation.objects.get().status == "pending"
    assert not Membership.objects.filter(user__email="someone.else@example.com").exists()


def test_an_expired_invitation_cannot_be_accepted(client, invite):
    token = invite()
    with time_machine.travel(timezone.now() + timedelta(days=7, seconds=1)):
        assert Invitation.objects.get().status == "expired"
        with pytest.raises(Conflict, match="expired"):
            services.invitation_accept(token=token, password="a long passphrase")
        page = client.get(reverse("accept_invitation", args=[token]))
        assert "This invitation is expired" in page.content.decode()
    assert not User.objects.filter(email="new.person@example.com").exists()


def test_a_revoked_invitation_cannot_be_accepted(client, org, owner, invite):
    token = invite()
    client.force_login(owner)
    client.post(reverse("portal:invitation_revoke", args=[Invitation.objects.get().pk]))
    client.logout()
    with pytest.raises(Conflict, match="revoked"):
        services.invitation_accept(token=token, password="a long passphrase")
    assert AuditLog.objects.filter(action="invitation.revoked", organization=org).exists()


def test_an_invitation_is_accepted_once(invite):
    token = invite()
    services.invitation_accept(token=token, password="a long passphrase")
    with pytest.raises(Conflict, match="accepted"):
        services.invitation_accept(token=token, password="another passphrase")
    assert Membership.objects.filter(user__email="new.person@example.com").count() == 1


def test_an_unknown_token_is_a_404_page(client):
    response = client.get(reverse("accept_invitation", args=["not-a-token"]))
    assert response.status_code == 404
    assert "Invitation not found" in response.content.decode()


def test_a_second_pending_invitation_to_the_same_address_is_refused(invite):
    invite()
    with pytest.raises(Conflict, match="already has a pending invitation"):
        invite(email="NEW.PERSON@example.com")
    assert Invitation.objects.count() == 1


def test_an_expired_invitation_can_be_sent_again(invite):
    invite()
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        invite()
    assert sorted(i.status for i in Invitation.objects.all()) == ["pending", "revoked"]


def test_members_are_not_invited_again(org, owner):
    with pytest.raises(Conflict, match="already a member"):
        services.invitation_create(organization=org, email=owner.email, role=Role.VIEWER, by=as_member(owner, org))


def test_an_unknown_role_is_refused(org, owner):
    with pytest.raises(DomainError) as exc:
        services.invitation_create(organization=org, email="a@example.com", role="god", by=as_member(owner, org))
    assert exc.value.field == "role"


def test_the_api_invites_unknown_people_and_adds_known_ones(org, org_api, django_capture_on_commit_callbacks):
    known = UserFactory(email="known@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        invited = org_api.post(f"/api/v1/organizations/{org.pk}/members",
                               {"email": "stranger@example.com", "role": "billing"}, format="json")
    added = org_api.post(f"/api/v1/organizations/{org.pk}/members", {"email": known.email, "role": "viewer"},
                         format="json")
    assert invited.status_code == 202 and invited.json()["status"] == "pending"
    assert added.status_code == 201 and added.json()["email"] == known.email
    assert [m.to for m in mail.outbox] == [["stranger@example.com"]]


def test_an_invitation_made_through_the_api_links_absolutely_to_the_portal(org, org_api, settings,
                                                                            django_capture_on_commit_callbacks):
    # Without a request to build from, the email carried "/invitations/…": no link at all.
    settings.PORTAL_BASE_URL = "https://billing.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        org_api.post(f"/api/v1/organizations/{org.pk}/members", {"email": "new@example.com", "role": "viewer"},
                     format="json")
    [email] = mail.outbox
    assert "https://billing.example.com/invitations/" in email.body
