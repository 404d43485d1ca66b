"""Factories for usage tests, and the tenancy registry entries for usage's routes.

Products come from pricing's factories; `add_price` writes a list price directly (the
tests pick times in the past, which `pricing.services` rightly refuses for new prices)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import factory

from accounts.tests.factories import OrganizationFactory
from accounts.tests.tenancy import tenant_factory
from pricing.models import BillingModel, Price, PriceUnit, Product, ResourceState
from pricing.tests.factories import ProductFactory
from usage.models import Project, Resource, StateInterval, to_minute


def add_price(product: Product, amount: str, *, valid_from: datetime, valid_to: datetime | None = None,
              state: str = ResourceState.RUNNING, currency: str = "USD", unit: str | None = None,
              monthly_cap: str | None = None, min_billable_minutes: int = 0) -> Price:
    if unit is None:
        unit = PriceUnit.MONTH if product.billing_model == BillingModel.MONTHLY else PriceUnit.HOUR
    return Price.objects.create(
        product=product, currency=currency, state=state, unit=unit, amount=Decimal(amount),
        monthly_cap=None if monthly_cap is None else Decimal(monthly_cap),
        min_billable_minutes=min_billable_minutes, valid_from=valid_from, valid_to=valid_to,
    )


class ResourceFactory(factory.django.DjangoModelFactory):
    """A resource with one change point (provisioning) at `state_since`."""

    class Meta:
        model = Resource
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    external_id = factory.Sequence(lambda n: f"srv-{n}")
    name = factory.LazyAttribute(lambda o: o.external_id)
    product = factory.SubFactory(ProductFactory)
    state = ResourceState.PROVISIONING
    state_since = factory.LazyFunction(lambda: datetime.now().astimezone())

    @factory.post_generation
    def _interval(obj, create, extracted, **kwargs):
        if create:
            StateInterval.objects.create(
                resource=obj, organization=obj.organization, started_at=obj.state_since,
                start_minute=to_minute(obj.state_since), state=obj.state, product=obj.product,
                eff_state=obj.state, eff_product=obj.product,
            )


@tenant_factory(Resource)
def make_resource(organization):
    return ResourceFactory(organization=organization)


@tenant_factory(Project)
def make_project(organization):
    return Project.objects.create(organization=organization, slug=f"p-{Project.objects.count() + 1}", name="A project")
