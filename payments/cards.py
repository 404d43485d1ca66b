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


def invoice_pay_panel(request, invoice) -> dict | None:
    """The Pay panel on the portal's invoice page (settings.INVOICE_DETAIL_PANELS): an
    open invoice is payable from its own page, whatever checkouts were left unfinished
    (paying again supersedes them)."""
    from accounts.scopes import ROLE_SCOPES
    from payments.selectors import payable_invoice

    if invoice.status != "open" or "billing:write" not in ROLE_SCOPES[request.membership.role]:
        return None
    payable = payable_invoice(invoice.organization, invoice.pk)
    if payable is None:
        return None
    return {"template": "payments/cards/invoice_pay.html", "invoice": payable, "providers": checkout_providers(),
            "sandbox": Provider.SANDBOX in checkout_providers()}
