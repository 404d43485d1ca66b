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
