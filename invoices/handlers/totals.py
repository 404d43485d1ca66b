"""Totals: sums of the rounded lines and their rounded taxes. Nothing is rounded here."""

from __future__ import annotations

from core.money import ZERO
from invoices.models import LineKind
from invoices.pipeline import BillingContext


class Totals:
    requires = frozenset({"lines", "taxes"})
    provides = frozenset({"totals"})

    def __call__(self, ctx: BillingContext) -> None:
        for bill in ctx.bills.values():
            bill.subtotal = sum((ln.amount for ln in bill.lines if ln.kind != LineKind.DISCOUNT), ZERO)
            bill.discount_total = sum((ln.amount for ln in bill.lines if ln.kind == LineKind.DISCOUNT), ZERO)
            bill.tax_total = sum((ln.tax_amount for ln in bill.lines), ZERO)
            bill.total = bill.subtotal + bill.discount_total + bill.tax_total
