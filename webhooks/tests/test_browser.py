"""An owner adds an endpoint in the portal, copies its secret, sends a test event that a
real receiver verifies with `standardwebhooks`, reads the delivery log and replays the
delivery: the issue's "delivered, verified and replayed", clicked as a customer would."""

from __future__ import annotations

import pytest

from core.tests.browser import axe_violations, overflowing, shot
from webhooks.models import WebhookEndpoint
from webhooks.receiver import Receiver


@pytest.fixture
def live_receiver():
    r = Receiver(secrets=[]).start()
    yield r
    r.stop()


def test_an_owner_adds_an_endpoint_sends_a_test_event_and_replays_it(portal_page, owner, live_receiver):
    page = portal_page(owner)
    page.goto("/webhooks/")
    shot(page, "webhooks-index")
    assert axe_violations(page) == []
    page.get_by_label("URL").fill(live_receiver.url)
    page.get_by_label("invoice.paid", exact=False).first.check()
    page.get_by_label("payment.succeeded", exact=False).first.check()
    page.get_by_role("button", name="Add endpoint").click()
    page.wait_for_url("**/webhooks/*/")
    secret = page.locator("#new-secret").inner_text()
    endpoint = WebhookEndpoint.objects.get()
    assert secret == endpoint.secret and secret.startswith("whsec_")
    live_receiver.secrets = [secret]

    page.get_by_role("button", name="Send test event").click()
    page.wait_for_url(f"**/webhooks/{endpoint.pk}/")
    [got] = live_receiver.received
    assert got.verified and got.payload["type"] == "webhook.test"
    assert page.locator("#new-secret").count() == 0  # the secret was shown once
    assert page.locator("table.data tbody tr").count() == 1
    shot(page, "webhooks-endpoint")
    assert axe_violations(page) == []

    page.get_by_role("link", name="webhook.test").click()
    page.wait_for_url("**/webhooks/deliveries/*/")
    page.get_by_role("button", name="Replay").click()
    page.wait_for_url("**/webhooks/deliveries/*/")
    assert [r.webhook_id for r in live_receiver.received] == [got.webhook_id] * 2
    assert all(r.verified for r in live_receiver.received)
    assert page.locator("details").count() == 2  # both attempts in the log
    shot(page, "webhooks-delivery")
    assert axe_violations(page) == []
    assert page.js_errors == []


def test_the_endpoint_page_fits_a_phone(portal_page, owner):
    from webhooks.tests.factories import make_attempted_delivery

    delivery = make_attempted_delivery(owner.memberships.first().organization)
    page = portal_page(owner, viewport="phone")
    for url in (f"/webhooks/{delivery.endpoint_id}/", f"/webhooks/deliveries/{delivery.pk}/", "/webhooks/"):
        page.goto(url)
        assert overflowing(page) == [], url
        assert axe_violations(page) == [], url
    shot(page, "webhooks-index-phone")
