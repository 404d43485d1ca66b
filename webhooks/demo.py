"""The demo's webhook endpoint: Acme AI sends every event type to the verifying receiver
`python manage.py webhook_receiver` runs on 127.0.0.1:8099 (README's tour). Idempotent."""

from __future__ import annotations

from accounts.models import Organization
from webhooks import services
from webhooks.catalogue import SUBSCRIBABLE
from webhooks.models import WebhookEndpoint

DEMO_RECEIVER_PORT = 8099
DEMO_URL = f"http://127.0.0.1:{DEMO_RECEIVER_PORT}/hook"


def seed(stdout=None) -> None:
    org = Organization.objects.filter(slug="acme-ai").first()
    if org is None or WebhookEndpoint.objects.filter(organization=org, url=DEMO_URL).exists():
        return
    services.endpoint_create(organization=org, url=DEMO_URL, event_types=SUBSCRIBABLE,
                             description="Demo receiver: python manage.py webhook_receiver")
    if stdout is not None:
        stdout.write(f"  webhooks: Acme AI sends every event to {DEMO_URL}")
