from decimal import Decimal

from accounts.tests.tenancy import tenant_factory
from budgets import services
from budgets.models import Budget


@tenant_factory(Budget)
def make_budget(organization, **values):
    values.setdefault("name", "Monthly")
    values.setdefault("amount", Decimal("10.00"))
    return services.budget_create(organization=organization, **values)
