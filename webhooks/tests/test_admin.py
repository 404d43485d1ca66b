"""The console: a billing admin makes a platform-wide endpoint (its secret shown once),
sends it a test event and replays deliveries; support can look but not act."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditLog
from accounts.staff import BILLING_ADMIN, SUPPORT
from accounts.tests.factories import UserFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.tests.factories import make_attempted_delivery

pytestmark = pytest.mark.django_db


def _staff(group_name):
    from accounts.staff import sync_staff_groups

    sync_staff_groups()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def test_a_billing_admin_adds_a_platform_wide_endpoint_in_the_console(client):
    client.force_login(_staff(BILLING_ADMIN))
    r = client.post("/console/webhooks/webhookendpoint/add/", {
        "url": "http://127.0.0.1:9/crm", "description": "CRM", "event_types": ["invoice.paid", "payment.failed"],
        "status": "enabled"}, follow=True)
    assert r.status_code == 200
    ep = WebhookEndpoint.objects.get()
    assert ep.organization is None and ep.event_types == ["invoice.paid", "payment.failed"]
    assert ep.secret in r.content.decode()  # the console's message, once
    assert AuditLog.objects.filter(action="webhook_endpoint.created").count() == 1


def test_a_billing_admin_replays_selected_deliveries_and_support_cannot(client, org, receiver,
                                                                      django_capture_on_commit_callbacks):
    d = make_attempted_delivery(org)
    WebhookEndpoint.objects.filter(pk=d.endpoint_id).update(url=receiver.url)
    receiver.secrets = [d.endpoint.secret]
    client.force_login(_staff(SUPPORT))
    page = client.get("/console/webhooks/webhookdelivery/")
    assert page.status_code == 200 and d.message.public_id in page.content.decode()
    assert "Replay selected" not in page.content.decode()

    client.force_login(_staff(BILLING_ADMIN))
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/console/webhooks/webhookdelivery/", {"action": "replay", "_selected_action": [d.pk]},
                        follow=True)
    assert "1 deliveries sent again" in r.content.decode()
    assert [x.webhook_id for x in receiver.received] == [d.message.public_id]
    assert WebhookDelivery.objects.get(pk=d.pk).status == "succeeded"
    assert client.get(f"/console/webhooks/webhookdelivery/{d.pk}/change/").status_code == 200


def test_console_actions_rotate_the_secret_and_send_a_test_event(client, receiver,
                                                                 django_capture_on_commit_callbacks):
    from webhooks import services

    ep = services.endpoint_create(organization=None, url=receiver.url, event_types=["invoice.paid"])
    old = ep.secret
    client.force_login(_staff(BILLING_ADMIN))
    r = client.post("/console/webhooks/webhookendpoint/", {"action": "rotate_secret", "_selected_action": [ep.pk]},
                    follow=True)
    ep.refresh_from_db()
    assert ep.secret != old and ep.previous_secret == old and ep.secret in r.content.decode()
    receiver.secrets = [old]  # a receiver not switched yet still verifies during the overlap
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/console/webhooks/webhookendpoint/", {"action": "send_test", "_selected_action": [ep.pk]})
    assert [x.verified for x in receiver.received] == [True]
