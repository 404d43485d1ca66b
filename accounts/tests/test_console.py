"""The billing console (Django admin): branded, staff groups with the right permissions,
every change audited, and the owner rules kept."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts import keys
from accounts.models import ApiKey, AuditLog, Invitation, Membership, Organization
from accounts.scopes import Role
from accounts.staff import BILLING_ADMIN, SUPPORT
from accounts.tests.factories import InvitationFactory, MembershipFactory, UserFactory, make_api_key

pytestmark = pytest.mark.django_db

ACCOUNTS_MODELS = ["organization", "membership", "invitation", "apikey", "auditlog", "user"]


@pytest.fixture
def staff(client):
    """staff(group) -> a client signed in as a staff member of that group."""

    def _staff(group: str):
        user = UserFactory(is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        client.force_login(user)
        return client, user

    return _staff


def _change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def _org_form(org: Organization, **changes) -> dict:
    data = {
        "name": org.name, "slug": org.slug, "is_active": "on", "legal_name": org.legal_name,
        "billing_email": org.billing_email, "address_line1": "", "address_line2": "", "city": org.city,
        "postal_code": "", "region": "", "country": org.country, "vat_id": "", "currency": org.currency,
        "billing_mode": org.billing_mode, "credit_limit": str(org.credit_limit),
        "payment_terms_days": org.payment_terms_days,
    }
    for prefix in ("memberships", "api_keys"):
        data |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0, f"{prefix}-MIN_NUM_FORMS": 0,
                 f"{prefix}-MAX_NUM_FORMS": 1000}
    return data | changes


def _inline_management(response) -> dict:
    """Every inline formset's management form, as the rendered change page has it."""
    data = {}
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data |= {management.add_prefix(name): management[name].value() for name in management.fields}
    return data


class TestBranding:
    def test_the_console_is_branded_and_ordered_like_the_money_flows(self, staff):
        client, _user = staff(BILLING_ADMIN)
        page = client.get(reverse("admin:index"))
        assert page.status_code == 200
        html = page.content.decode()
        assert "cloudbill" in html and "billing console" in html and "css/console.css" in html
        labels = [app["app_label"] for app in page.context["app_list"]]
        known = [label for label in ["accounts", "pricing", "usage", "credits", "invoices", "payments"] if label in labels]
        assert labels[: len(known)] == known

    def test_customers_are_sent_to_sign_in(self, client, owner):
        client.force_login(owner)
        response = client.get(reverse("admin:index"))
        assert response.status_code == 302 and "/console/login/" in response["Location"]


class TestStaffGroups:
    def test_groups_are_synced_with_the_right_permissions(self):
        support = set(Group.objects.get(name=SUPPORT).permissions.values_list("codename", flat=True))
        admin = set(Group.objects.get(name=BILLING_ADMIN).permissions.values_list("codename", flat=True))
        assert all(code.startswith("view_") for code in support - {"platform_read"})
        assert {"view_organization", "view_auditlog", "platform_read"} <= support
        assert {"change_organization", "add_membership", "platform_write"} <= admin
        assert not {"change_auditlog", "delete_auditlog"} & admin

    @pytest.mark.parametrize("group", [SUPPORT, BILLING_ADMIN])
    @pytest.mark.parametrize("model", ACCOUNTS_MODELS)
    def test_both_groups_see_every_list_with_search_and_filters(self, staff, org, group, model):
        client, _user = staff(group)
        url = reverse(f"admin:accounts_{model}_changelist")
        assert client.get(url).status_code == 200
        assert client.get(url, {"q": "example"}).status_code == 200

    def test_support_reads_but_cannot_change_anything(self, staff, org, make_member):
        client, _user = staff(SUPPORT)
        member = make_member(org, Role.VIEWER)
        page = client.get(_change_url(org))
        assert page.status_code == 200 and not page.context["has_change_permission"]
        assert client.post(_change_url(org), _org_form(org, city="Nowhere")).status_code == 403
        assert client.post(_change_url(member), {"user": member.user_id, "organization": org.pk,
                                                 "role": Role.OWNER}).status_code == 403
        assert client.get(reverse("admin:accounts_organization_add")).status_code == 403
        assert client.post(reverse("admin:accounts_membership_delete", args=[member.pk]),
                           {"post": "yes"}).status_code == 403
        org.refresh_from_db()
        assert org.city != "Nowhere" and Membership.objects.get(pk=member.pk).role == Role.VIEWER
        assert not AuditLog.objects.filter(action__endswith="_in_console").exists()

    def test_support_cannot_revoke_keys(self, staff, org):
        client, _user = staff(SUPPORT)
        key, _raw = make_api_key(org)
        response = client.post(reverse("admin:accounts_apikey_changelist"),
                               {"action": "revoke", "_selected_action": [key.pk]})
        assert response.status_code in (200, 302)
        key.refresh_from_db()
        assert key.revoked_at is None

    def test_nobody_edits_the_audit_trail(self, staff, org):
        client, user = staff(BILLING_ADMIN)
        entry = AuditLog.objects.create(action="x.y", organization=org)
        assert client.post(_change_url(entry), {"action": "tampered"}).status_code == 403
        assert client.post(reverse("admin:accounts_auditlog_delete", args=[entry.pk]),
                           {"post": "yes"}).status_code == 403
        assert AuditLog.objects.get(pk=entry.pk).action == "x.y"


class TestAuditedChanges:
    def test_a_billing_admin_change_is_saved_and_audited_with_the_fields(self, staff, org):
        client, user = staff(BILLING_ADMIN)
        page = client.get(_change_url(org))
        data = _org_form(org, city="Lisbon", credit_limit="5000", billing_mode="postpaid") | _inline_management(page)
        response = client.post(_change_url(org), data)
        assert response.status_code == 302, response.context and response.context["adminform"].form.errors
        org.refresh_from_db()
        assert org.city == "Lisbon" and org.billing_mode == "postpaid"
        entry = AuditLog.objects.get(action="organization.changed_in_console")
        assert entry.actor == user and entry.organization == org
        assert entry.changes["city"][1] == "Lisbon" and entry.changes["billing_mode"] == ["prepaid", "postpaid"]
        assert set(entry.changes) == {"city", "credit_limit", "billing_mode"}

    def test_adding_and_deleting_in_the_console_is_audited(self, staff, org, make_member):
        client, user = staff(BILLING_ADMIN)
        make_member(org, Role.OWNER)
        newcomer = UserFactory()
        response = client.post(reverse("admin:accounts_membership_add"),
                               {"user": newcomer.pk, "organization": org.pk, "role": Role.BILLING})
        assert response.status_code == 302
        membership = Membership.objects.get(user=newcomer)
        assert AuditLog.objects.filter(action="membership.created_in_console", object_id=str(membership.pk),
                                       actor=user).exists()
        client.post(reverse("admin:accounts_membership_delete", args=[membership.pk]), {"post": "yes"})
        assert not Membership.objects.filter(pk=membership.pk).exists()
        assert AuditLog.objects.filter(action="membership.deleted_in_console", object_id=str(membership.pk)).exists()

    def test_bulk_deletes_are_audited_row_by_row(self, staff, org):
        client, _user = staff(BILLING_ADMIN)
        members = [MembershipFactory(organization=org, role=Role.VIEWER) for _ in range(3)]
        client.post(reverse("admin:accounts_membership_changelist"),
                    {"action": "delete_selected", "_selected_action": [m.pk for m in members], "post": "yes"})
        assert not Membership.objects.filter(pk__in=[m.pk for m in members]).exists()
        assert AuditLog.objects.filter(action="membership.deleted_in_console").count() == 3

    def test_inline_member_changes_on_an_organisation_are_audited(self, staff, org, make_member):
        client, _user = staff(BILLING_ADMIN)
        _owner, viewer = make_member(org, Role.OWNER), make_member(org, Role.VIEWER)
        page = client.get(_change_url(org))
        data = _org_form(org) | _inline_management(page)
        members_formset = next(f.formset for f in page.context["inline_admin_formsets"] if f.formset.model is Membership)
        prefix = members_formset.prefix
        for i, m in enumerate(members_formset.queryset):
            data |= {f"{prefix}-{i}-id": m.pk, f"{prefix}-{i}-organization": org.pk, f"{prefix}-{i}-user": m.user_id,
                     f"{prefix}-{i}-role": Role.ADMIN if m.pk == viewer.pk else m.role}
        response = client.post(_change_url(org), data)
        assert response.status_code == 302
        assert Membership.objects.get(pk=viewer.pk).role == Role.ADMIN
        entry = AuditLog.objects.get(action="membership.changed_in_console")
        assert entry.changes == {"role": [Role.VIEWER, Role.ADMIN]} and entry.organization == org

    def test_revoking_keys_from_the_console_goes_through_the_service(self, staff, org, api):
        client, user = staff(BILLING_ADMIN)
        key, raw = make_api_key(org)
        client.post(reverse("admin:accounts_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})
        assert api(raw).get("/api/v1/organization").status_code == 401
        assert AuditLog.objects.filter(action="api_key.revoked", actor=user, object_id=str(key.pk)).exists()

    def test_staff_access_changes_are_audited(self, staff):
        client, admin_user = staff(BILLING_ADMIN)
        admin_user.is_superuser = True  # changing users needs auth.change_user; superusers have it
        admin_user.save()
        person = UserFactory()
        page = client.get(_change_url(person))
        form = page.context["adminform"].form
        data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
        data |= {"is_staff": "on", "groups": [Group.objects.get(name=SUPPORT).pk], "date_joined_0": "2026-01-01",
                 "date_joined_1": "00:00:00"}
        data.pop("password", None)
        data.pop("user_permissions", None)
        data.pop("date_joined", None)
        data.pop("last_login", None)
        response = client.post(_change_url(person), {k: v for k, v in data.items() if v is not False})
        assert response.status_code == 302, response.context["adminform"].form.errors
        entry = AuditLog.objects.get(action="user.changed_in_console", object_id=str(person.pk))
        assert entry.changes["is_staff"] == [False, True]
        assert entry.changes["groups"][1] == [str(Group.objects.get(name=SUPPORT).pk)]


    def test_setting_a_password_in_the_console_is_audited_without_the_hash(self, staff):
        client, admin_user = staff(BILLING_ADMIN)
        admin_user.is_superuser = True
        admin_user.save()
        person = UserFactory()
        url = reverse("admin:auth_user_password_change", args=[person.pk])
        response = client.post(url, {"password1": "a fresh passphrase", "password2": "a fresh passphrase",
                                     "usable_password": "true"})
        assert response.status_code == 302
        person.refresh_from_db()
        assert person.check_password("a fresh passphrase")
        entry = AuditLog.objects.get(action="user.password_set_in_console", object_id=str(person.pk))
        assert entry.actor == admin_user and person.password not in str(entry.changes)


class TestOwnerRulesInTheConsole:
    def test_the_members_inline_cannot_leave_an_organisation_without_owner(self, staff, org, make_member):
        client, _user = staff(BILLING_ADMIN)
        owner = make_member(org, Role.OWNER)
        page = client.get(_change_url(org))
        members = next(f.formset for f in page.context["inline_admin_formsets"] if f.formset.model is Membership)
        data = _org_form(org) | _inline_management(page) | {
            f"{members.prefix}-0-id": owner.pk, f"{members.prefix}-0-organization": org.pk,
            f"{members.prefix}-0-user": owner.user_id, f"{members.prefix}-0-role": Role.VIEWER,
        }
        response = client.post(_change_url(org), data)
        assert response.status_code == 200 and "at least one owner" in response.content.decode()
        assert Membership.objects.get(pk=owner.pk).role == Role.OWNER
        assert not AuditLog.objects.filter(action__endswith="_in_console").exists()

    def test_the_last_owner_cannot_be_demoted(self, staff, org, make_member):
        client, _user = staff(BILLING_ADMIN)
        owner = make_member(org, Role.OWNER)
        response = client.post(_change_url(owner), {"user": owner.user_id, "organization": org.pk,
                                                    "role": Role.VIEWER})
        assert response.status_code == 200
        assert "at least one owner" in response.content.decode()
        assert Membership.objects.get(pk=owner.pk).role == Role.OWNER

    def test_the_last_owner_cannot_be_deleted(self, staff, org, make_member):
        client, _user = staff(BILLING_ADMIN)
        owner = make_member(org, Role.OWNER)
        response = client.post(reverse("admin:accounts_membership_delete", args=[owner.pk]), {"post": "yes"})
        assert response.status_code == 403
        assert Membership.objects.filter(pk=owner.pk).exists()

    def test_one_of_two_owners_can_be_demoted(self, staff, org, make_member):
        client, _user = staff(BILLING_ADMIN)
        first, _second = make_member(org, Role.OWNER), make_member(org, Role.OWNER)
        response = client.post(_change_url(first), {"user": first.user_id, "organization": org.pk,
                                                    "role": Role.ADMIN})
        assert response.status_code == 302
        assert Membership.objects.get(pk=first.pk).role == Role.ADMIN


def test_invitations_filter_by_status(staff, org):
    client, _user = staff(SUPPORT)
    InvitationFactory(organization=org, email="pending@example.com")
    accepted = InvitationFactory(organization=org, email="accepted@example.com")
    Invitation.objects.filter(pk=accepted.pk).update(accepted_at="2026-01-01T00:00:00Z")
    page = client.get(reverse("admin:accounts_invitation_changelist"), {"status": "pending"})
    assert [i.email for i in page.context["cl"].result_list] == ["pending@example.com"]


def test_api_key_secrets_never_show_in_the_console(staff, org):
    client, _user = staff(BILLING_ADMIN)
    key, raw = make_api_key(org)
    page = client.get(_change_url(key)).content.decode()
    secret = keys.parse(raw).secret  # the secret itself may contain "_": split as the parser does
    assert key.secret_hash not in page and secret not in page and key.prefix in page
    assert ApiKey.objects.count() == 1


class TestOwnerRulesUnderConcurrency:
    def test_bulk_deleting_every_owner_is_refused(self, staff, org, make_member):
        client, _user = staff(BILLING_ADMIN)
        a, b = make_member(org, Role.OWNER), make_member(org, Role.OWNER)
        viewer = make_member(org, Role.VIEWER)
        response = client.post(reverse("admin:accounts_membership_changelist"),
                               {"action": "delete_selected", "_selected_action": [a.pk, b.pk], "post": "yes"})
        assert response.status_code == 403
        assert Membership.objects.filter(pk__in=[a.pk, b.pk, viewer.pk]).count() == 3

    def test_a_membership_cannot_be_moved_to_another_organisation(self, staff, org, other_org, make_member):
        client, _user = staff(BILLING_ADMIN)
        owner = make_member(org, Role.OWNER)
        client.post(_change_url(owner), {"user": owner.user_id, "organization": other_org.pk, "role": Role.OWNER})
        assert Membership.objects.get(pk=owner.pk).organization_id == org.pk


@pytest.mark.django_db(transaction=True)
def test_the_console_and_the_api_demoting_the_two_owners_at_once_leave_one_owner():
    import threading

    from django.db import connection
    from django.test import Client

    from accounts import services
    from accounts.tenancy import SYSTEM
    from accounts.tests.factories import OrganizationFactory
    from core.errors import DomainError

    admin_user = UserFactory(is_staff=True)
    admin_user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    for _ in range(5):
        org = OrganizationFactory()
        a, b = MembershipFactory(organization=org, role=Role.OWNER), MembershipFactory(organization=org, role=Role.OWNER)
        barrier = threading.Barrier(2)

        def by_console(membership=a, org=org, barrier=barrier):
            try:
                client = Client()
                client.force_login(admin_user)
                barrier.wait()
                client.post(_change_url(membership), {"role": Role.VIEWER})
            finally:
                connection.close()

        def by_service(membership=b, barrier=barrier):
            try:
                barrier.wait()
                services.membership_change_role(membership=membership, role=Role.VIEWER, by=SYSTEM)
            except DomainError:
                pass
            finally:
                connection.close()

        threads = [threading.Thread(target=by_console), threading.Thread(target=by_service)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert Membership.objects.filter(organization=org, role=Role.OWNER).count() == 1
