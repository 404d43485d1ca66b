"""`make run` prints where the demo is, how to sign in, and what is sandboxed."""

import io

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_demo_banner_names_the_postgresql_it_runs_on(settings):
    out = io.StringIO()
    call_command("demo_banner", "--port", "8123", stdout=out)
    assert "http://127.0.0.1:8123/" in out.getvalue()
    assert "Database: PostgreSQL 1" in out.getvalue()


def test_the_demo_banner_says_how_to_sign_in_and_that_payments_are_sandboxed(settings):
    settings.STRIPE_SECRET_KEY = settings.PAYPAL_CLIENT_ID = ""
    out = io.StringIO()
    call_command("demo_banner", stdout=out)
    assert "customer@cloudbill.example / cloudbill-demo" in out.getvalue()
    assert "Payments: the sandbox provider (no real money" in out.getvalue()
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    out = io.StringIO()
    call_command("demo_banner", stdout=out)
    assert "Payments: Stripe." in out.getvalue()
