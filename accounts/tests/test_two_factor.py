"""Two-factor sign-in: enrolment with a QR code drawn on the server, the code step after
the password (TOTP or a single-use recovery code), staff held at enrolment until they
have a device, an owner's requirement, and the API refusing a session that owes its code."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor
from accounts.models import AuditLog, Organization, RecoveryCode
from accounts.scopes import Role
from accounts.staff import BILLING_ADMIN
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # UserFactory's


def code_for(device: TOTPDevice) -> str:
    """What the person's authenticator app shows now."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def thirty_seconds_later(device: TOTPDevice) -> None:
    """A code is accepted once; the next sign-in in the same test gets the 'next' code."""
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)


def a_moment_later(user) -> None:
    """A wrong code makes the next try wait a second (throttling); tests do not sleep."""
    from accounts.models import RecoveryCodeDevice

    for model in (TOTPDevice, RecoveryCodeDevice):
        model.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    """A confirmed device and recovery codes, as if the person had enrolled earlier."""
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    codes = two_factor.recovery_codes_regenerate(user=user)
    return device, codes


def sign_in(client: Client, user, next_url: str = ""):
    data = {"username": user.email, "password": PASSWORD} | ({"next": next_url} if next_url else {})
    return client.post(reverse("login"), data)


def _verify(client: Client, code: str, next_url: str = "/"):
    return client.post(reverse("two_factor_verify"), {"code": code, "next": next_url})


@pytest.fixture
def staff_member():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING_ADMIN))
    return user


class TestEnrolment:
    def test_a_customer_turns_it_on_from_settings_with_a_qr_code_drawn_on_the_server(self, client, owner):
        assert sign_in(client, owner).status_code == 302
        settings_page = client.get(reverse("portal:settings")).content.decode()
        assert "Your two-factor sign-in" in settings_page and reverse("two_factor_enrol") in settings_page
        page = client.get(reverse("two_factor_enrol"))
        html = page.content.decode()
        assert page.status_code == 200 and "<svg" in html and "<path" in html
        assert not re.search(r"<script[^>]+src=\"https?://", html)  # no CDN, nothing fetched
        device = TOTPDevice.objects.get(user=owner, confirmed=False)
        assert two_factor.secret_for_people(device) in html
        assert client.get(reverse("two_factor_enrol")).context["secret"] == two_factor.secret_for_people(device)

        wrong = client.post(reverse("two_factor_enrol"), {"code": "000000" if code_for(device) != "000000" else "111111"})
        assert wrong.status_code == 200 and "not right" in wrong.content.decode()
        assert not two_factor.has_two_factor(owner)
        a_moment_later(owner)
        done = client.post(reverse("two_factor_enrol"), {"code": code_for(device), "next": "/settings/"})
        assert done.status_code == 302 and done["Location"].startswith(reverse("two_factor_recovery_codes"))
        shown = client.get(done["Location"])
        codes = re.findall(r"<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</li>", shown.content.decode())
        assert len(codes) == 10
        again = client.get(reverse("two_factor_recovery_codes")).content.decode()
        assert not any(code in again for code in codes) and "10 unused recovery codes" in again  # shown once
        stored = list(RecoveryCode.objects.filter(device__user=owner).values_list("code_hash", flat=True))
        assert len(stored) == 10 and not {c.replace("-", "") for c in codes} & set(stored)
        assert set(stored) == {two_factor.recovery_code_hash(c) for c in codes}  # only hashes
        assert AuditLog.objects.filter(action="user.two_factor_enabled", actor=owner).exists()
        assert client.get(reverse("portal:dashboard")).status_code == 200  # this session is verified

    def test_new_recovery_codes_void_the_old(self, client, owner):
        device, old = enrolled(owner)
        sign_in(client, owner)
        _verify(client, code_for(device))
        response = client.post(reverse("two_factor_recovery_codes"))
        new = re.findall(r"<li>([a-z2-7-]{19})</li>", client.get(response["Location"]).content.decode())
        assert len(new) == 10 and not set(new) & set(old)
        client.logout()
        sign_in(client, owner)
        assert _verify(client, old[0]).status_code == 200
        a_moment_later(owner)
        assert _verify(client, new[0]).status_code == 302
        assert AuditLog.objects.filter(action="user.recovery_codes_regenerated").count() == 2

    def test_a_customer_may_turn_it_off_again(self, client, owner):
        device, _codes = enrolled(owner)
        sign_in(client, owner)
        _verify(client, code_for(device))
        client.post(reverse("two_factor_disable"))
        assert not two_factor.has_two_factor(owner) and not RecoveryCode.objects.filter(device__user=owner).exists()
        assert AuditLog.objects.filter(action="user.two_factor_disabled", actor=owner).exists()
        client.logout()
        assert sign_in(client, owner)["Location"] == reverse("portal:dashboard")

    def test_a_session_owing_its_code_cannot_enrol_a_second_app_or_make_codes(self, client, owner):
        enrolled(owner)
        sign_in(client, owner)
        assert client.get(reverse("two_factor_enrol"))["Location"].startswith(reverse("two_factor_verify"))
        assert client.post(reverse("two_factor_recovery_codes"))["Location"].startswith(reverse("two_factor_verify"))
        assert client.post(reverse("two_factor_disable"))["Location"].startswith(reverse("two_factor_verify"))
        assert TOTPDevice.objects.filter(user=owner).count() == 1 and two_factor.has_two_factor(owner)
        assert RecoveryCode.objects.filter(device__user=owner).count() == 10


class TestSigningIn:
    def test_password_then_the_code_from_the_app(self, client, owner):
        device, _codes = enrolled(owner)
        response = sign_in(client, owner, next_url="/team/")
        assert response.status_code == 302 and response["Location"] == f"{reverse('two_factor_verify')}?next=%2Fteam%2F"
        page = client.get(response["Location"])
        assert page.status_code == 200 and "One more step" in page.content.decode()
        done = _verify(client, code_for(device), "/team/")
        assert done.status_code == 302 and done["Location"] == "/team/"
        assert client.get("/team/").status_code == 200

    def test_a_recovery_code_works_once(self, client, owner):
        _device, codes = enrolled(owner)
        sign_in(client, owner)
        assert _verify(client, codes[0].upper().replace("-", " ")).status_code == 302  # as people type it
        assert client.get(reverse("portal:dashboard")).status_code == 200
        entry = AuditLog.objects.get(action="user.recovery_code_used")
        assert entry.actor == owner and entry.changes == {"codes_left": 9}
        again = Client()
        sign_in(again, owner)
        assert _verify(again, codes[0]).status_code == 200
        assert again.get(reverse("portal:dashboard"))["Location"].startswith(reverse("two_factor_verify"))
        assert two_factor.recovery_codes_left(owner) == 9

    def test_without_the_code_nothing_opens(self, client, owner, org):
        device, _codes = enrolled(owner)
        sign_in(client, owner)
        assert client.session[SESSION_KEY] == str(owner.pk)  # the password was right…
        for url in ("/", "/team/", "/settings/", "/api-keys/"):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("two_factor_verify")), url
        wrong = _verify(client, "123456" if code_for(device) != "123456" else "654321")
        assert wrong.status_code == 200 and "not right" in wrong.content.decode()
        assert _verify(client, "not-a-code-at-all").status_code == 200
        assert client.get("/").status_code == 302

    def test_a_code_is_not_accepted_twice(self, client, owner):
        device, _codes = enrolled(owner)
        code = code_for(device)
        sign_in(client, owner)
        assert _verify(client, code).status_code == 302
        replay = Client()
        sign_in(replay, owner)
        assert _verify(replay, code).status_code == 200

    def test_wrong_codes_make_the_step_wait(self, client, owner):
        device, _codes = enrolled(owner)
        sign_in(client, owner)
        for _ in range(3):
            _verify(client, "000000" if code_for(device) != "000000" else "111111")
        response = _verify(client, code_for(device))
        assert response.status_code == 200 and "Too many wrong codes" in response.content.decode()

    def test_the_session_key_changes_when_the_code_is_accepted(self, client, owner):
        device, _codes = enrolled(owner)
        sign_in(client, owner)
        before = client.session.session_key
        _verify(client, code_for(device))
        assert client.session.session_key != before

    def test_an_unsafe_next_is_ignored(self, client, owner):
        device, _codes = enrolled(owner)
        sign_in(client, owner)
        assert _verify(client, code_for(device), "https://evil.example/")["Location"] == reverse("portal:dashboard")


class TestTheApi:
    def test_a_session_owing_its_code_gets_403_in_the_error_format(self, client, owner, org):
        device, _codes = enrolled(owner)
        sign_in(client, owner)
        response = client.get("/api/v1/organization")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "two_factor_required"
        _verify(client, code_for(device))
        assert client.get("/api/v1/organization").status_code == 200

    def test_api_keys_are_not_sessions(self, org, owner, org_api):
        org.require_two_factor = True
        org.save()
        assert org_api.get("/api/v1/organization").status_code == 200

    def test_a_staff_session_without_a_device_gets_403(self, client, staff_member):
        sign_in(client, staff_member)
        response = client.get("/api/v1/organizations")
        assert response.status_code == 403 and response.json()["error"]["code"] == "two_factor_required"


class TestStaff:
    def test_the_console_is_closed_until_the_staff_member_enrols(self, client, staff_member):
        response = client.post(reverse("admin:login"), {"username": staff_member.email, "password": PASSWORD,
                                                        "next": "/console/"})
        assert response.status_code == 302
        held = client.get("/console/")
        assert held.status_code == 302 and held["Location"].startswith(reverse("two_factor_enrol"))
        for url in ("/console/accounts/organization/", "/console/accounts/user/", "/", "/two-factor/recovery-codes/"):
            assert client.get(url)["Location"].startswith(reverse("two_factor_enrol")), url
        page = client.get(held["Location"])
        assert "Staff sign in with a code" in page.content.decode()
        device = TOTPDevice.objects.get(user=staff_member, confirmed=False)
        done = client.post(held["Location"], {"code": code_for(device), "next": "/console/"})
        codes_page = client.get(done["Location"])
        assert codes_page.status_code == 200 and 'href="/console/"' in codes_page.content.decode()
        assert client.get("/console/").status_code == 200

    def test_signing_in_to_the_console_asks_for_the_code(self, client, staff_member):
        device, _codes = enrolled(staff_member)
        client.post(reverse("admin:login"), {"username": staff_member.email, "password": PASSWORD})
        assert client.get("/console/")["Location"].startswith(reverse("two_factor_verify"))
        _verify(client, code_for(device), "/console/")
        assert client.get("/console/").status_code == 200

    def test_staff_signing_in_on_the_portal_page_end_in_the_console(self, client, staff_member):
        # The portal's sign-in sent staff (members of no organisation) through the code
        # step to the dashboard, which answered its 403 "no organisation" page.
        device, _codes = enrolled(staff_member)
        step = sign_in(client, staff_member)
        assert step["Location"].startswith(reverse("two_factor_verify"))
        next_url = client.get(step["Location"]).context["next"]
        done = _verify(client, code_for(device), next_url)
        assert done["Location"] == reverse("admin:index")
        assert client.get(done["Location"]).status_code == 200

    def test_the_console_refuses_an_unverified_staff_session_on_its_own(self, rf, staff_member):
        """The backstop behind the middleware: the console's own permission check."""
        from django.contrib import admin

        request = rf.get("/console/")
        request.user = staff_member
        assert not admin.site.has_permission(request)
        staff_member.is_verified = lambda: True
        assert admin.site.has_permission(request)

    def test_staff_cannot_turn_it_off(self, client, staff_member):
        device, _codes = enrolled(staff_member)
        sign_in(client, staff_member)
        _verify(client, code_for(device))
        client.post(reverse("two_factor_disable"))
        assert two_factor.has_two_factor(staff_member)

    def test_a_superuser_resets_a_lost_device_and_it_is_audited(self, admin_client, staff_member):
        enrolled(staff_member)
        admin_client.post(reverse("admin:accounts_user_changelist"),
                          {"action": "reset_two_factor", "_selected_action": [staff_member.pk]})
        assert not two_factor.has_two_factor(staff_member)
        assert AuditLog.objects.filter(action="user.two_factor_reset_in_console", object_id=str(staff_member.pk)).exists()

    def test_only_superusers_may_reset(self, client, staff_member):
        other = UserFactory(is_staff=True)
        enrolled(other)
        client.force_login(staff_member)
        client.post(reverse("admin:accounts_user_changelist"),
                    {"action": "reset_two_factor", "_selected_action": [other.pk]})
        assert two_factor.has_two_factor(other)

    def test_the_console_never_shows_authenticator_keys(self):
        from django.contrib import admin

        assert not admin.site.is_registered(TOTPDevice)


class TestRequiredByTheOwner:
    def test_an_owner_requires_it_and_members_without_it_are_sent_to_enrol(self, client, org, owner, make_member):
        member = make_member(org, Role.VIEWER).user
        device, _codes = enrolled(owner)
        sign_in(client, owner)
        _verify(client, code_for(device))
        response = client.post(reverse("portal:two_factor_requirement"), {"require_two_factor": "on"})
        assert response.status_code == 302
        org.refresh_from_db()
        assert org.require_two_factor
        entry = AuditLog.objects.get(action="organization.two_factor_requirement_changed")
        assert entry.actor == owner and entry.changes == {"require_two_factor": [False, True]}
        assert member.email in client.get(reverse("portal:settings")).content.decode()  # not using it yet

        theirs = Client()
        assert sign_in(theirs, member)["Location"].startswith(reverse("two_factor_enrol"))
        held = theirs.get("/")
        assert held.status_code == 302 and held["Location"].startswith(reverse("two_factor_enrol"))
        assert org.name in theirs.get(held["Location"]).content.decode()
        api = theirs.get("/api/v1/organization")
        assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required"
        mine = TOTPDevice.objects.get(user=member, confirmed=False)
        theirs.post(reverse("two_factor_enrol"), {"code": code_for(mine)})
        assert theirs.get("/").status_code == 200
        theirs.post(reverse("two_factor_disable"))
        assert two_factor.has_two_factor(member)  # required: it stays on

    def test_a_member_signed_in_before_the_requirement_is_held_at_the_next_page(self, client, org, owner, make_member):
        member = make_member(org, Role.BILLING).user
        sign_in(client, member)
        assert client.get("/").status_code == 200
        Organization.objects.filter(pk=org.pk).update(require_two_factor=True)
        assert client.get("/")["Location"].startswith(reverse("two_factor_enrol"))

    def test_an_owner_without_it_cannot_require_it(self, client, org, owner):
        sign_in(client, owner)
        client.post(reverse("portal:two_factor_requirement"), {"require_two_factor": "on"})
        org.refresh_from_db()
        assert not org.require_two_factor

    @pytest.mark.parametrize("role", [Role.ADMIN, Role.BILLING, Role.VIEWER])
    def test_only_an_owner_sets_it(self, client, org, make_member, role):
        member = make_member(org, role).user
        enrolled(member)
        client.force_login(member)  # the password step
        device = TOTPDevice.objects.get(user=member)
        _verify(client, code_for(device))
        assert client.post(reverse("portal:two_factor_requirement"), {"require_two_factor": "on"}).status_code == 403
        org.refresh_from_db()
        assert not org.require_two_factor
