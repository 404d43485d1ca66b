"""Server-side request forgery: production refuses endpoints on private, loopback,
link-local and metadata addresses and plain http, at creation and again at each attempt."""

from __future__ import annotations

import pytest

from core.errors import DomainError
from webhooks import addresses, delivery, services
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_rule(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    return settings


@pytest.mark.parametrize("url", [
    "http://93.184.216.34/hook",  # plain http
    "https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://192.168.0.5/hook", "https://172.16.0.1/",
    "https://169.254.169.254/latest/meta-data", "https://[::1]/hook", "https://[fd00::1]/hook",
    "https://localhost:8443/hook", "https://0.0.0.0/", "https://user:pw@93.184.216.34/",
])
def test_production_refuses_private_and_plain_http_endpoints(production_rule, org, url):
    with pytest.raises(DomainError) as refused:
        services.endpoint_create(organization=org, url=url, event_types=["invoice.paid"])
    assert refused.value.field == "url"


def test_production_accepts_a_public_https_address(production_rule):
    addresses.check_url("https://93.184.216.34/hook")


def test_the_base_settings_refuse_private_addresses_and_tests_allow_them():
    import billing_site.settings.base as base

    assert base.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is False  # production inherits this
    from django.conf import settings

    assert settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is True


def test_an_attempt_to_an_address_refused_since_is_not_made(org, receiver, settings):
    ep = services.endpoint_create(organization=org, url=receiver.url, event_types=["invoice.paid"])
    receiver.secrets = [ep.secret]
    d = services.endpoint_send_test(endpoint=ep)  # not sent: inside the test's transaction
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    assert delivery.deliver(d.pk) == DeliveryStatus.PENDING
    d = WebhookDelivery.objects.get(pk=d.pk)
    assert d.last_error.startswith("Refused:") and d.attempts == 1
    assert receiver.received == []
