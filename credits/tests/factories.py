from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.tests.tenancy import tenant_factory
from credits import services
from credits.models import CreditEvent, EventKind, LedgerEntry, PromoGrant, TopUp


@tenant_factory(LedgerEntry)
def make_ledger_entry(organization):
    return services.ledger_post(organization=organization, amount=Decimal("5"), kind="adjustment",
                                reason="tenancy test")


@tenant_factory(TopUp)
def make_topup(organization):
    return TopUp.objects.create(organization=organization, source="manual", amount=Decimal("5"),
                                currency=organization.currency)


@tenant_factory(PromoGrant)
def make_promo_grant(organization):
    return services.promo_grant(organization=organization, amount=Decimal("5"), reason="tenancy test",
                                expires_at=timezone.now() + timedelta(days=30))


@tenant_factory(CreditEvent)
def make_credit_event(organization):
    return CreditEvent.objects.create(organization=organization, kind=EventKind.BALANCE_WARNING, message="test")
