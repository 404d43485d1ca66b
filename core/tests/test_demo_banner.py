"""`make run` prints where the demo is, how to sign in, and what is sandboxed."""

import io

import pytest
from django.core.management import CommandError, call_command

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


def test_the_demo_banner_says_how_staff_pass_two_factor_and_that_it_is_demo_only():
    from accounts.demo import DEMO_RECOVERY_CODE, DEMO_TOTP_SECRET

    out = io.StringIO()
    call_command("demo_banner", stdout=out)
    text = out.getvalue()
    assert DEMO_TOTP_SECRET in text and DEMO_RECOVERY_CODE in text and "DEMO ONLY" in text


def test_seed_demo_refuses_without_seeders(settings):
    settings.DEMO_SEEDERS = []
    with pytest.raises(CommandError, match="no demo data"):
        call_command("seed_demo")


def test_production_settings_never_load_the_demo_data():
    """The demo's passwords and public two-factor key never reach a production database."""
    from core.tests.test_security import GOOD_PRODUCTION_ENV, _run

    result = _run(["manage.py", "seed_demo"], "billing_site.settings.production", GOOD_PRODUCTION_ENV)
    assert result.returncode != 0 and "DEMO_SEEDERS is empty" in result.stderr
