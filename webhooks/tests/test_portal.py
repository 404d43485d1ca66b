"""The portal pages: owners and admins manage their organisation's endpoints; the secret
is shown once; another organisation's endpoint or delivery is a 404."""

from __future__ import annotations

import pytest

from webhooks.models import EndpointStatus, WebhookEndpoint
from webhooks.tests.factories import make_attempted_delivery, make_endpoint

pytestmark = pytest.mark.django_db


def test_an_owner_adds_an_endpoint_and_sees_the_secret_once(client, org, make_member):
    client.force_login(make_member(org, "admin").user)
    r = client.post("/webhooks/", {"url": "http://127.0.0.1:9/hook", "event_types": ["invoice.paid"]})
    ep = WebhookEndpoint.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/webhooks/{ep.pk}/"
    assert ep.organization == org and ep.event_types == ["invoice.paid"]
    assert ep.secret in client.get(r["Location"]).content.decode()
    assert ep.secret not in client.get(r["Location"]).content.decode()  # once


def test_a_bad_url_or_no_event_is_a_form_error_not_a_500(client, org, make_member, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    client.force_login(make_member(org, "owner").user)
    r = client.post("/webhooks/", {"url": "https://10.0.0.1/hook", "event_types": ["invoice.paid"]})
    assert r.status_code == 200 and "private or reserved address" in r.content.decode()
    r = client.post("/webhooks/", {"url": "https://93.184.216.34/hook"})
    assert r.status_code == 200 and "This field is required" in r.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_billing_and_viewer_members_cannot_open_the_pages(client, org, make_member):
    for role in ("billing", "viewer"):
        client.force_login(make_member(org, role).user)
        assert client.get("/webhooks/").status_code == 403


def test_another_organisations_endpoint_and_delivery_are_404(client, org, other_org, make_member):
    client.force_login(make_member(org, "owner").user)
    theirs = make_attempted_delivery(other_org)
    for url in (f"/webhooks/{theirs.endpoint_id}/", f"/webhooks/deliveries/{theirs.pk}/"):
        assert client.get(url).status_code == 404
    for url in (f"/webhooks/{theirs.endpoint_id}/toggle", f"/webhooks/{theirs.endpoint_id}/delete",
                f"/webhooks/{theirs.endpoint_id}/rotate", f"/webhooks/deliveries/{theirs.pk}/replay"):
        assert client.post(url).status_code == 404
    theirs.endpoint.refresh_from_db()
    assert theirs.endpoint.status == EndpointStatus.ENABLED


def test_the_delivery_page_shows_the_payload_and_every_attempt(client, org, make_member):
    client.force_login(make_member(org, "owner").user)
    d = make_attempted_delivery(org)
    page = client.get(f"/webhooks/deliveries/{d.pk}/").content.decode()
    assert d.message.public_id in page and "topup.succeeded" in page
    assert "HTTP 500" in page and "HTTP 200" in page and "Internal Server Error" in page


def test_disable_and_replay_a_range_from_the_endpoint_page(client, org, make_member):
    client.force_login(make_member(org, "owner").user)
    ep = make_endpoint(org)
    client.post(f"/webhooks/{ep.pk}/toggle")
    ep.refresh_from_db()
    assert ep.status == EndpointStatus.DISABLED
    r = client.post(f"/webhooks/{ep.pk}/replay", {"start": "2026-01-01", "end": "2026-01-31"}, follow=True)
    assert "enable it first" in r.content.decode()
    client.post(f"/webhooks/{ep.pk}/toggle")
    r = client.post(f"/webhooks/{ep.pk}/replay", {"start": "2026-01-31", "end": "2026-01-01"}, follow=True)
    assert "Nothing replayed" in r.content.decode()
    r = client.post(f"/webhooks/{ep.pk}/replay", {"start": "2026-01-01", "end": "2026-01-31"}, follow=True)
    assert "0 deliveries sent again" in r.content.decode()
