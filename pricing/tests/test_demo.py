from decimal import Decimal as D

from django.utils import timezone

from accounts import demo as accounts_demo
from pricing import demo
from pricing.models import Contract, Price, Product
from pricing.resolver import resolve_many, resolve_price


def test_demo_price_book_loads_once_and_prices_every_demo_organisation(db):
    accounts_demo.seed()
    demo.seed()
    counts = (Product.objects.count(), Price.objects.count(), Contract.objects.count())
    demo.seed()
    assert (Product.objects.count(), Price.objects.count(), Contract.objects.count()) == counts
    contract = Contract.objects.get()
    assert contract.organization.slug == "nordlicht"
    now = timezone.now()
    nordlicht = contract.organization
    a100 = Product.objects.get(code="gpu-a100-8x")
    assert resolve_price(organization=nordlicht, product=a100, state="running", at=now).amount == D("11.50")
    h100 = Product.objects.get(code="gpu-h100-8x")
    assert Price.objects.filter(product=h100, currency="USD", state="running").count() == 2  # the price change
    servers = Product.objects.filter(kind="server")
    triples = [(o.id, p.id, s) for o in contract.organization.__class__.objects.all() for p in servers
               for s in ("running", "stopped", "hibernated")]
    assert None not in resolve_many(triples, at=now)
