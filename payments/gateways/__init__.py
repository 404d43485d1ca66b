"""Payment gateways: Stripe and PayPal with keys in the environment, the sandbox without.

`gateway_for(provider)` is the one way to reach a provider (`card_gateway_for` for one
that keeps saved cards); `checkout_providers()` lists what the portal offers.
"""

from __future__ import annotations

from django.conf import settings

from payments.gateways.base import CardGateway, Gateway
from payments.models import Provider


def stripe_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def paypal_configured() -> bool:
    return bool(settings.PAYPAL_CLIENT_ID and settings.PAYPAL_CLIENT_SECRET)


def checkout_providers() -> list[Provider]:
    """Providers a customer can pay through, in the order shown. The sandbox stands in
    only when no real provider is configured."""
    providers = [p for p, on in ((Provider.STRIPE, stripe_configured()), (Provider.PAYPAL, paypal_configured())) if on]
    return providers or [Provider.SANDBOX]


def card_provider() -> Provider:
    """Where saved cards live (off-session charges): Stripe with keys, else the sandbox."""
    return Provider.STRIPE if stripe_configured() else Provider.SANDBOX


def gateway_for(provider: str) -> Gateway:
    if provider == Provider.PAYPAL:
        from payments.gateways.paypal_gateway import PayPalGateway

        return PayPalGateway()
    return card_gateway_for(provider)


def card_gateway_for(provider: str) -> CardGateway:
    """The gateway of a provider that keeps saved cards (PayPal does not)."""
    if provider == Provider.STRIPE:
        from payments.gateways.stripe_gateway import StripeGateway

        return StripeGateway()
    if provider == Provider.SANDBOX:
        from payments.gateways.sandbox import SandboxGateway

        return SandboxGateway()
    raise ValueError(f"No card gateway for {provider!r}.")
