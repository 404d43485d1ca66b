"""Products: creating and changing the catalogue's flavours, volumes and add-ons.

A product's `code` never changes (the platform refers to it), and its billing model
only while it has no price.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import ApiKey, User
from core.errors import Conflict, DomainError
from pricing.models import BillingModel, Product, ProductGroup, ProductKind
from pricing.services.common import _audit

PRODUCT_FIELDS = ("name", "description", "group", "kind", "billing_model", "unit_label", "vcpus", "ram_gb",
                  "gpu_model", "gpu_count", "local_disk_gb", "is_active", "position")


def product_check(product: Product) -> None:
    """The rules of a product's attributes, as DomainErrors. No writes."""
    if product.billing_model == BillingModel.ADDON and product.kind != ProductKind.ADDON:
        raise DomainError("Only add-on products use the add-on billing model.", field="billing_model")
    if product.kind == ProductKind.SERVER and not product.vcpus:
        raise DomainError("A server flavour needs its number of vCPUs.", field="vcpus")
    if product.gpu_count and not product.gpu_model:
        raise DomainError("Name the GPU model of a flavour with GPUs.", field="gpu_model")


@transaction.atomic
def product_create(*, code: str, name: str, group: ProductGroup, kind: str, billing_model: str,
                   actor: User | None = None, api_key: ApiKey | None = None, **attributes: Any) -> Product:
    unknown = set(attributes) - set(PRODUCT_FIELDS)
    if unknown:
        raise DomainError(f"Unknown product fields: {', '.join(sorted(unknown))}.")
    if Product.objects.filter(code=code).exists():
        raise DomainError(f"A product with code {code!r} already exists.", field="code")
    product = Product(code=code, name=name, group=group, kind=kind, billing_model=billing_model, **attributes)
    product_check(product)
    product.save()
    _audit("product.created", actor=actor, api_key=api_key, obj=product,
           changes={"code": code, "name": name, "kind": kind, "billing_model": billing_model, **attributes})
    return product


@transaction.atomic
def product_update(*, product: Product, actor: User | None = None, api_key: ApiKey | None = None,
                   **fields: Any) -> Product:
    """`code` never changes (the platform refers to it); the billing model only while unpriced."""
    unknown = set(fields) - set(PRODUCT_FIELDS)
    if unknown:
        raise DomainError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    product = Product.objects.select_for_update().get(pk=product.pk)
    if "billing_model" in fields and fields["billing_model"] != product.billing_model and product.prices.exists():
        raise Conflict("The billing model of a priced product cannot change; create a new product.",
                       field="billing_model")
    changes = {k: [str(getattr(product, k)), str(v)] for k, v in fields.items() if getattr(product, k) != v}
    for key, value in fields.items():
        setattr(product, key, value)
    product_check(product)
    product.save()
    if changes:
        _audit("product.changed", actor=actor, api_key=api_key, obj=product, changes=changes)
    return product
