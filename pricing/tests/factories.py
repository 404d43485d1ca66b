import factory

from pricing.models import BillingModel, Product, ProductGroup, ProductKind


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
