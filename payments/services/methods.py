"""Saved payment methods (cards): recording one, choosing the default, removing one.

An organisation has at most one default among its active methods: its first card
becomes the default, and removing the default promotes the newest remaining card.
Writes lock the organisation row, so concurrent saves and removals queue. A method is
recorded idempotently on the provider's id; removal at the provider runs after commit.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, User
from core.errors import Conflict
from payments.gateways.base import SavedMethod
from payments.models import PaymentMethod
from payments.services.lifecycle import _after_commit


@transaction.atomic
def payment_method_save(*, organization: Organization, provider: str, saved: SavedMethod,
                        actor: User | None = None) -> PaymentMethod:
    """Record a card saved through the provider's hosted flow. Idempotent on the
    provider's id; the organisation's first active card becomes its default."""
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    method, created = PaymentMethod.objects.get_or_create(
        provider=provider, provider_method_id=saved.provider_method_id,
        defaults=dict(organization=organization, provider_customer_id=saved.provider_customer_id, brand=saved.brand,
                      last4=saved.last4, exp_month=saved.exp_month, exp_year=saved.exp_year),
    )
    if method.organization_id != organization.pk:
        raise Conflict("That payment method belongs to another customer.")
    if created:
        if not PaymentMethod.objects.filter(organization=organization, is_default=True, detached_at=None).exists():
            method.is_default = True
            method.save(update_fields=["is_default"])
        audit_record("payment_method.added", actor=actor, organization=organization, obj=method,
                     changes={"provider": provider, "brand": saved.brand, "last4": saved.last4})
    return method


@transaction.atomic
def payment_method_set_default(*, method: PaymentMethod, actor: User | None = None) -> PaymentMethod:
    Organization.objects.select_for_update().filter(pk=method.organization_id).first()
    method = PaymentMethod.objects.get(pk=method.pk)
    if method.detached_at:
        raise Conflict("A removed payment method cannot be the default.")
    PaymentMethod.objects.filter(organization_id=method.organization_id, is_default=True).exclude(
        pk=method.pk).update(is_default=False)
    if not method.is_default:
        method.is_default = True
        method.save(update_fields=["is_default"])
        audit_record("payment_method.default_set", actor=actor, organization=method.organization, obj=method)
    return method


@transaction.atomic
def payment_method_detach(*, method: PaymentMethod, actor: User | None = None, at_provider: bool = True) -> PaymentMethod:
    """Remove a saved method here, and at the provider after commit (unless the provider
    told us it is gone). The newest remaining card becomes the default."""
    Organization.objects.select_for_update().filter(pk=method.organization_id).first()
    method = PaymentMethod.objects.get(pk=method.pk)
    if method.detached_at:
        return method
    was_default = method.is_default
    method.detached_at = timezone.now()
    method.is_default = False
    method.save(update_fields=["detached_at", "is_default"])
    if was_default:
        successor = (PaymentMethod.objects.filter(organization_id=method.organization_id, detached_at=None)
                     .order_by("-created_at").first())
        if successor:
            successor.is_default = True
            successor.save(update_fields=["is_default"])
    audit_record("payment_method.removed", actor=actor, organization=method.organization, obj=method,
                 changes={"at_provider": at_provider})
    if at_provider:
        _after_commit("payments.tasks.payment_method_detach_task", method.pk)
    return method


def default_method(organization: Organization, provider: str) -> PaymentMethod | None:
    return PaymentMethod.objects.filter(organization=organization, provider=provider, is_default=True,
                                        detached_at=None).first()


def payment_method_save_safely(**kwargs: Any) -> PaymentMethod:
    """`payment_method_save` for concurrent deliveries of one card (webhook and return page)."""
    try:
        return payment_method_save(**kwargs)
    except IntegrityError:
        return payment_method_save(**kwargs)
