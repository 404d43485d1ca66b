"""The demo's sandbox provisioning panel: it starts and stops servers exactly as the
platform's events would, for the caller's organisation only, and only where enabled."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.models import AuditLog
from core.tests.test_security import GOOD_PRODUCTION_ENV, _run
from pricing.models import ResourceState
from usage import metering
from usage.models import Resource, StateInterval
from usage.tests.conftest import at, billed
from usage.tests.factories import ProductFactory, add_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox_on(settings):
    settings.USAGE_SANDBOX_PROVISIONING = True


@pytest.fixture
def flavour(clock):
    product = ProductFactory(code="cpu-4", name="CPU 4")
    add_price(product, "2.06", valid_from=at(0, 0, day=(2026, 1, 1)))
    return product


def _fund(org, amount: str) -> None:
    from credits import services as credit_services

    credit_services.ledger_post(organization=org, amount=Decimal(amount), kind="adjustment", reason="test credit")


def test_a_started_sandbox_server_is_metered_like_a_platform_event_and_stops_when_asked(
        sandbox_on, flavour, org, owner, client, clock):
    client.force_login(owner)
    _fund(org, "50.00")
    clock.move_to(at(10, 17, 30))
    response = client.post("/usage/sandbox/start", {"product": flavour.pk, "name": "demo-box"}, follow=True)
    assert "Sandbox server demo-box is running" in response.content.decode()
    server = Resource.objects.get(organization=org)
    assert server.external_id.startswith("sbx-") and server.state == ResourceState.RUNNING
    assert AuditLog.objects.filter(action="resource.created", actor=owner).count() == 1
    clock.move_to(at(11, 17, 30))
    client.post(f"/usage/sandbox/{server.pk}/stop")
    server.refresh_from_db()
    assert server.state == ResourceState.STOPPED
    with time_machine.travel(at(12, 0), tick=False):
        metering.meter_pass(until=at(12, 0))
    # 10:17 → 11:17 at $2.06/hour: sixty minutes, charged to the minute.
    assert billed(resource=server) == (Decimal("2.06"), 60)


def test_the_page_offers_the_panel_only_where_enabled(sandbox_on, flavour, owner, client, settings):
    client.force_login(owner)
    assert "Start a server" in client.get("/usage/").content.decode()
    settings.USAGE_SANDBOX_PROVISIONING = False
    assert "Start a server" not in client.get("/usage/").content.decode()
    assert client.post("/usage/sandbox/start", {"product": flavour.pk, "name": "x"}).status_code == 404
    assert not Resource.objects.exists()


def test_only_sandbox_servers_of_ones_own_organisation_can_be_stopped(sandbox_on, flavour, org, other_org, owner,
                                                                       make_member, client, clock):
    from usage import services

    platform_server = services.resource_create(organization=org, external_id="srv-real", product=flavour,
                                               at=at(22, 0), state=ResourceState.RUNNING)
    client.force_login(make_member(other_org, "owner").user)
    _fund(other_org, "50.00")
    client.post("/usage/sandbox/start", {"product": flavour.pk, "name": "theirs"})
    theirs = Resource.objects.get(organization=other_org)
    client.force_login(owner)
    assert client.post(f"/usage/sandbox/{platform_server.pk}/stop").status_code == 404
    assert client.post(f"/usage/sandbox/{theirs.pk}/stop").status_code == 404
    assert StateInterval.objects.filter(resource__in=[platform_server, theirs], state="stopped").count() == 0


def test_a_viewer_cannot_start_servers_and_bad_input_is_refused(sandbox_on, flavour, org, make_member, owner, client):
    client.force_login(make_member(org, "viewer").user)
    assert client.post("/usage/sandbox/start", {"product": flavour.pk, "name": "x"}).status_code == 403
    client.force_login(owner)
    page = client.post("/usage/sandbox/start", {"product": 999999, "name": "not a slug!"}, follow=True)
    assert "product:" in page.content.decode() and not Resource.objects.exists()


def test_production_refuses_to_start_with_the_sandbox_panel_on():
    result = _run(["-c", "import django; django.setup()"], "billing_site.settings.production",
                  GOOD_PRODUCTION_ENV | {"USAGE_SANDBOX_PROVISIONING": "true"})
    assert result.returncode != 0 and "USAGE_SANDBOX_PROVISIONING is for demos" in result.stderr


def test_start_time_is_now_not_a_chosen_time(sandbox_on, flavour, org, owner, client, clock):
    client.force_login(owner)
    _fund(org, "50.00")
    client.post("/usage/sandbox/start", {"product": flavour.pk, "name": "now", "at": "2026-01-01T00:00:00Z"})
    started = StateInterval.objects.get(resource__organization=org).started_at
    assert abs(started - at(23, 0)) < timedelta(minutes=1)


def test_the_panel_asks_runway_admission_first_and_shows_the_refusal(sandbox_on, flavour, org, owner, client, clock):
    """As the platform asks POST /api/v1/admission before it starts anything: $1.00 at
    $2.06/h lasts 29 minutes, less than the hour the default policy asks for."""
    client.force_login(owner)
    _fund(org, "1.00")
    page = client.post("/usage/sandbox/start", {"product": flavour.pk, "name": "big"}, follow=True).content.decode()
    assert "Not started (insufficient runway): $1.00 of credit would last 29 minutes at $2.06/h; at least 1 hour" \
        in page
    assert not Resource.objects.exists()
    _fund(org, "9.00")  # $10.00 lasts 4.9 hours
    page = client.post("/usage/sandbox/start", {"product": flavour.pk, "name": "big"}, follow=True).content.decode()
    assert "Sandbox server big is running" in page and "about 5 hours left at your current usage" in page
