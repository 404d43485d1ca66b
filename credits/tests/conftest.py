from decimal import Decimal

import pytest

from credits import services
from credits.models import Balance


@pytest.fixture
def credit(org):
    """credit(amount) tops `org` up by a staff adjustment and returns the entry."""

    def _credit(amount, organization=None, **kwargs):
        return services.credit_adjust(organization=organization or org, amount=Decimal(amount),
                                      reason=kwargs.pop("reason", "test credit"), **kwargs)

    return _credit


@pytest.fixture
def balance_of():
    def _balance(organization) -> Balance:
        return Balance.objects.get(organization=organization, currency=organization.currency)

    return _balance
