from __future__ import annotations

from accounts.models import Organization
from accounts.tests.tenancy import tenant_factory
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookMessage


@tenant_factory(WebhookEndpoint)
def make_endpoint(organization: Organization | None, url: str = "http://127.0.0.1:9/hook",
                  event_types=("invoice.finalized", "payment.succeeded")) -> WebhookEndpoint:
    return services.endpoint_create(organization=organization, url=url, event_types=event_types)


@tenant_factory(WebhookDelivery)
def make_delivery(organization: Organization) -> WebhookDelivery:
    """A delivered message to a new endpoint of `organization` (nothing is sent)."""
    endpoint = make_endpoint(organization)
    message = WebhookMessage.objects.create(public_id=services._message_id(), organization=organization,
                                            event_type="webhook.test", version=1, data={"message": "test"})
    return WebhookDelivery.objects.create(message=message, endpoint=endpoint, status=DeliveryStatus.SUCCEEDED)


def make_attempted_delivery(organization: Organization) -> WebhookDelivery:
    """A delivered topup.succeeded with its log: a 500, then a 200 (for pages to show)."""
    from datetime import timedelta

    from django.utils import timezone

    from webhooks.models import WebhookAttempt

    endpoint = make_endpoint(organization, url="https://hooks.acme.example/billing",
                             event_types=("topup.succeeded", "invoice.paid"))
    now = timezone.now()
    message = WebhookMessage.objects.create(
        public_id=services._message_id(), organization=organization, event_type="topup.succeeded", version=1,
        data={"topup_id": 5, "source": "manual", "currency": "EUR", "amount": "50.00", "ledger_entry_id": 9})
    delivery = WebhookDelivery.objects.create(message=message, endpoint=endpoint, status=DeliveryStatus.SUCCEEDED,
                                              attempts=1, last_attempt_at=now, last_status_code=200,
                                              succeeded_at=now)
    for status, body, ago in ((500, "Internal Server Error", 31), (200, '{"ok": true}', 0)):
        WebhookAttempt.objects.create(
            delivery=delivery, attempted_at=now - timedelta(seconds=ago), url=endpoint.url,
            request_headers={"webhook-id": message.public_id, "webhook-signature": "v1,…"},
            request_body=message.body(), response_status=status, response_body=body, duration_ms=42)
    type(endpoint).objects.filter(pk=endpoint.pk).update(last_success_at=now, last_failure_at=now - timedelta(seconds=31))
    return delivery
