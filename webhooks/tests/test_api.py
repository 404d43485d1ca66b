"""The webhook API: what each caller sees and may do, the secret shown once, replays and
the test event through the API, and readable 4xx for bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks import services
from webhooks.catalogue import ALL_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.tests.factories import make_delivery, make_endpoint

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhook-endpoints"


def test_an_organisation_key_creates_an_endpoint_and_sees_its_secret_only_in_that_answer(org, org_api):
    r = org_api.post(URL, {"url": "http://127.0.0.1:9/hook", "event_types": ["invoice.paid", "invoice.finalized"]},
                     format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["organization"] == org.pk and body["platform_wide"] is False
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["invoice.finalized", "invoice.paid"]
    again = org_api.get(f"{URL}/{body['id']}").json()
    assert "secret" not in again and again["url"] == "http://127.0.0.1:9/hook"


def test_an_organisation_cannot_name_another_or_see_anothers_endpoints_and_deliveries(org, other_org, org_api):
    theirs = make_endpoint(other_org)
    their_delivery = make_delivery(other_org)
    platform = make_endpoint(None)
    mine = make_endpoint(org)
    my_delivery = make_delivery(org)

    r = org_api.post(URL, {"url": "http://127.0.0.1:9/x", "event_types": ["invoice.paid"],
                           "organization": other_org.pk}, format="json")
    assert r.status_code == 404
    listed = {e["id"] for e in org_api.get(URL).json()["results"]}
    assert listed == {mine.pk, my_delivery.endpoint_id}
    for path in (f"{URL}/{theirs.pk}", f"{URL}/{platform.pk}", f"/api/v1/webhook-deliveries/{their_delivery.pk}"):
        assert org_api.get(path).status_code == 404, path
    for path in (f"{URL}/{theirs.pk}/rotate-secret", f"{URL}/{theirs.pk}/test",
                 f"/api/v1/webhook-deliveries/{their_delivery.pk}/replay"):
        assert org_api.post(path, {}, format="json").status_code == 404, path
    assert org_api.post(f"{URL}/{theirs.pk}/replay", {"since": "2026-01-01T00:00:00Z"},
                        format="json").status_code == 404
    assert org_api.delete(f"{URL}/{theirs.pk}").status_code == 404
    deliveries = org_api.get("/api/v1/webhook-deliveries").json()["results"]
    assert [d["id"] for d in deliveries] == [my_delivery.pk]
    assert org_api.get(f"/api/v1/webhook-deliveries?endpoint={theirs.pk}").status_code == 400
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()


def test_a_platform_key_makes_a_platform_wide_endpoint_or_one_for_an_organisation(org, platform_api):
    r = platform_api.post(URL, {"url": "http://127.0.0.1:9/crm", "event_types": ["payment.failed"]}, format="json")
    assert r.status_code == 201 and r.json()["platform_wide"] is True and r.json()["organization"] is None
    r = platform_api.post(URL, {"url": "http://127.0.0.1:9/o", "event_types": ["payment.failed"],
                                "organization": org.pk}, format="json")
    assert r.status_code == 201 and r.json()["organization"] == org.pk
    assert len(platform_api.get(URL).json()["results"]) == 2


def test_a_member_without_webhooks_write_is_refused(org, make_member, api):
    viewer = make_member(org, "viewer").user
    client = api()
    client.force_login(viewer)
    r = client.get(URL)
    assert r.status_code == 403 and r.json()["error"]["required_scope"] == "webhooks:write"


@pytest.mark.parametrize("body, field", [
    ({"url": "http://127.0.0.1:9/h", "event_types": ["invoice.nope"]}, "event_types"),
    ({"url": "http://127.0.0.1:9/h", "event_types": []}, "event_types"),
    ({"url": "not a url", "event_types": ["invoice.paid"]}, "url"),
    ({"url": "ftp://example.com/h", "event_types": ["invoice.paid"]}, "url"),
    ({"url": "http://127.0.0.1:9/h", "event_types": ["invoice.paid"], "secret": "whsec_mine"}, "secret"),
])
def test_bad_input_is_a_400_naming_the_field(org_api, body, field):
    r = org_api.post(URL, body, format="json")
    assert r.status_code == 400, r.content
    assert field in str(r.json())


def test_patch_disables_and_enables_rotate_returns_a_new_secret_with_an_overlap(org, org_api):
    ep = make_endpoint(org)
    old = ep.secret
    r = org_api.patch(f"{URL}/{ep.pk}", {"enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    assert org_api.post(f"{URL}/{ep.pk}/test", {}, format="json").status_code == 409  # disabled: enable first
    assert org_api.patch(f"{URL}/{ep.pk}", {"enabled": True}, format="json").json()["status"] == "enabled"
    r = org_api.post(f"{URL}/{ep.pk}/rotate-secret", {"overlap_seconds": 600}, format="json")
    assert r.status_code == 200
    ep.refresh_from_db()
    assert r.json()["secret"] == ep.secret != old and ep.previous_secret == old
    assert ep.signing_secrets(timezone.now()) == [ep.secret, old]
    assert ep.signing_secrets(timezone.now() + timedelta(minutes=11)) == [ep.secret]


def test_the_test_event_and_replays_through_the_api_reach_a_verifying_receiver(
        org, org_api, receiver, django_capture_on_commit_callbacks):
    ep = services.endpoint_create(organization=org, url=receiver.url, event_types=["invoice.paid"])
    receiver.secrets = [ep.secret]
    with django_capture_on_commit_callbacks(execute=True):
        r = org_api.post(f"{URL}/{ep.pk}/test", {}, format="json")
    # Accepted: sent after the request's transaction commits.
    assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["event_type"] == "webhook.test"
    delivery_id = r.json()["id"]
    assert org_api.get(f"/api/v1/webhook-deliveries/{delivery_id}").json()["status"] == "succeeded"
    detail = org_api.get(f"/api/v1/webhook-deliveries/{delivery_id}").json()
    assert detail["payload"]["type"] == "webhook.test"
    assert [a["response_status"] for a in detail["attempt_log"]] == [200]

    with django_capture_on_commit_callbacks(execute=True):
        r = org_api.post(f"/api/v1/webhook-deliveries/{delivery_id}/replay", {}, format="json")
    assert r.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        r = org_api.post(f"{URL}/{ep.pk}/replay", {"since": (timezone.now() - timedelta(hours=1)).isoformat()},
                         format="json")
    assert r.status_code == 202 and r.json() == {"replayed": 1}
    assert [x.verified for x in receiver.received] == [True, True, True]
    assert len({x.webhook_id for x in receiver.received}) == 1
    assert WebhookDelivery.objects.get(pk=delivery_id).attempt_log.count() == 3


def test_a_replay_range_ending_before_it_starts_is_a_400(org, org_api):
    ep = make_endpoint(org)
    r = org_api.post(f"{URL}/{ep.pk}/replay", {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                     format="json")
    assert r.status_code == 400 and "until" in str(r.json())


def test_the_catalogue_lists_every_type_with_its_version_and_fields(org_api):
    r = org_api.get("/api/v1/webhook-event-types")
    assert r.status_code == 200
    assert {t["type"]: t["version"] for t in r.json()} == {n: t.version for n, t in ALL_TYPES.items()}
    assert all(set(t["example"]) == set(t["fields"]) for t in r.json())
