"""Coupons: a percentage of the charges, or a fixed amount, for a number of periods."""

from __future__ import annotations

from decimal import Decimal

from core.money import ZERO, format_money, round_money
from invoices import selectors
from invoices.models import CouponKind, LineKind
from invoices.pipeline import BillingContext, Line

HUNDRED = Decimal(100)


class Coupons:
    # A percentage of all the charges; taxes then apply to the discounted lines.
    requires = frozenset({"charges"})
    provides = frozenset({"discounts", "lines"})

    def __call__(self, ctx: BillingContext) -> None:
        redemptions = selectors.active_redemptions(list(ctx.bills), ctx.period_start, ctx.period_end)
        for org_id, bill in ctx.bills.items():
            charges = sum((ln.amount for ln in bill.charge_lines), ZERO)
            for redemption in redemptions.get(org_id, []):
                coupon = redemption.coupon
                if charges <= ZERO:
                    break
                # The coupon_kind_fields constraint: a percent coupon has percent_off, a fixed one amount_off.
                if coupon.kind == CouponKind.PERCENT and coupon.percent_off is not None:
                    amount = charges * coupon.percent_off / HUNDRED
                    label = f"{coupon.percent_off.normalize():f}% off"
                elif coupon.kind == CouponKind.FIXED and coupon.amount_off is not None:
                    # A fixed amount is per period: it belongs to the span closing the month.
                    if not ctx.closes_period or coupon.currency != bill.currency:
                        continue
                    amount = min(coupon.amount_off, charges)
                    label = f"{format_money(coupon.amount_off, coupon.currency)} off"
                else:
                    raise ValueError(f"Coupon {coupon.code}: a {coupon.kind!r} coupon without its amount.")
                amount = round_money(amount, bill.currency)
                if amount <= ZERO:
                    continue
                charges -= amount
                bill.add(Line(
                    kind=LineKind.DISCOUNT,
                    group="Discounts",
                    description=f"{coupon.name} ({coupon.code}): {label}",
                    quantity=Decimal(1),
                    unit="",
                    unit_price=-amount,
                    amount=-amount,
                    coupon_redemption_id=redemption.pk,
                ))
