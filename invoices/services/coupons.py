"""Coupons: redeeming one for an organisation (once per organisation and coupon).

What a redemption takes off an invoice is the discounts handler's
(`invoices.handlers.discounts`).
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError
from invoices.models import Coupon, CouponRedemption


@transaction.atomic
def coupon_redeem(
    *, organization: Organization, coupon: Coupon, starts_at: datetime | None = None,
    actor: User | None = None, api_key: ApiKey | None = None,
) -> CouponRedemption:
    if not coupon.is_active:
        raise Conflict("This coupon is no longer active.", field="coupon")
    if coupon.currency and coupon.currency != organization.currency:
        raise DomainError(f"This coupon is in {coupon.currency}, the organisation pays in {organization.currency}.",
                          field="coupon")
    try:
        with transaction.atomic():
            redemption = CouponRedemption.objects.create(
                coupon=coupon, organization=organization, starts_at=starts_at or timezone.now()
            )
    except IntegrityError:
        raise Conflict("This organisation already has this coupon.", field="coupon") from None
    audit_record("coupon.redeemed", actor=actor, api_key=api_key, organization=organization, obj=redemption,
                 changes={"coupon": coupon.code})
    return redemption
