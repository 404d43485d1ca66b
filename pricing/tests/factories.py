from datetime import UTC, datetime
from decimal import Decimal

import factory

from accounts.tests.tenancy import tenant_factory
from pricing.models import BillingModel, Contract, ContractPrice, Product, ProductGroup, ProductKind


class ProductGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductGroup
        django_get_or_create = ("slug",)

    slug = "servers"
    name = "Servers"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"flavour-{n}")
    name = factory.Sequence(lambda n: f"Flavour {n}")
    group = factory.SubFactory(ProductGroupFactory)
    kind = ProductKind.SERVER
    billing_model = BillingModel.HOURLY
    vcpus = 4
    ram_gb = 16


@tenant_factory(Contract)
def make_contract(organization):
    """A contract of `organization` with one 10% discount (written directly: the service
    refuses contracts that start in the past)."""
    contract = Contract.objects.create(organization=organization, name="Deal", currency=organization.currency,
                                       valid_from=datetime(2026, 1, 1, tzinfo=UTC), note="Signed")
    ContractPrice.objects.create(contract=contract, product=ProductFactory(), kind="discount",
                                 discount_percent=Decimal("10"))
    return contract
