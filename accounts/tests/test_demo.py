"""The demo's people, and its staff's public two-factor key so the console tour works."""

from __future__ import annotations

import time
from base64 import b32decode

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import demo, two_factor
from accounts.models import User

pytestmark = pytest.mark.django_db


def _app_code() -> str:
    """What an authenticator app given the banner's key shows now."""
    totp = TOTP(b32decode(demo.DEMO_TOTP_SECRET))
    totp.time = time.time()
    return f"{totp.token():06d}"


def _sign_in(client: Client, email: str) -> None:
    assert client.post(reverse("admin:login"), {"username": email, "password": demo.DEMO_PASSWORD}).status_code == 302


def test_every_demo_staff_account_has_the_public_key_and_the_customers_do_not():
    demo.seed()
    staff = User.objects.filter(is_staff=True)
    assert {u.email for u in staff} == {"staff@cloudbill.example", "support@cloudbill.example",
                                        "admin@cloudbill.example"}
    for user in staff:
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        assert device.bin_key == b32decode(demo.DEMO_TOTP_SECRET)
    assert not TOTPDevice.objects.filter(user__is_staff=False).exists()  # customers opt in themselves


def test_the_tour_signs_in_to_the_console_with_the_key_from_the_banner(client):
    demo.seed()
    _sign_in(client, "staff@cloudbill.example")
    assert client.get("/console/")["Location"].startswith(reverse("two_factor_verify"))
    response = client.post(reverse("two_factor_verify"), {"code": _app_code(), "next": "/console/"})
    assert response["Location"] == "/console/"
    assert client.get("/console/").status_code == 200


def test_the_demo_recovery_code_works_once_per_seed(client):
    demo.seed()
    _sign_in(client, "staff@cloudbill.example")
    assert client.post(reverse("two_factor_verify"), {"code": demo.DEMO_RECOVERY_CODE}).status_code == 302
    again = Client()
    _sign_in(again, "staff@cloudbill.example")
    assert again.post(reverse("two_factor_verify"), {"code": demo.DEMO_RECOVERY_CODE}).status_code == 200
    demo.seed()  # the next `make run`
    staff = User.objects.get(email="staff@cloudbill.example")
    two_factor.RecoveryCodeDevice.objects.filter(user=staff).update(throttling_failure_count=0)
    assert again.post(reverse("two_factor_verify"), {"code": demo.DEMO_RECOVERY_CODE}).status_code == 302


def test_seeding_again_keeps_one_device_each():
    demo.seed()
    demo.seed()
    assert TOTPDevice.objects.filter(name=demo.DEMO_DEVICE_NAME).count() == 3
