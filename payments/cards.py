from payments.gateways import checkout_providers
from payments.models import PaymentMethod, Provider
from payments.selectors import active_dunning, payment_history


def payments_card(request, organization) -> dict:
    return {
        "template": "payments/cards/payments.html",
        "method": PaymentMethod.objects.filter(organization=organization, is_default=True, detached_at=None).first(),
        "last_payment": payment_history(organization).first(),
        "dunning": active_dunning(organization),
        "sandbox": Provider.SANDBOX in checkout_providers(),
    }
