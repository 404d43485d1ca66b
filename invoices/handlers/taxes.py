"""Tax per line (docs/invoices.md): rate of the organisation's country from the
TaxRate table, zero with a note for EU reverse charge and for tax-exempt customers."""

from __future__ import annotations

from decimal import Decimal

from core.money import round_money
from invoices import tax_rules
from invoices.pipeline import BillingContext

HUNDRED = Decimal(100)


class Taxes:
    requires = frozenset({"lines"})
    provides = frozenset({"taxes"})

    def __call__(self, ctx: BillingContext) -> None:
        rates = tax_rules.rates_on(ctx.period_start.date())
        for bill in ctx.bills.values():
            treatment = tax_rules.treatment_for(bill.organization, rates)
            bill.tax_note = treatment.note
            for line in bill.lines:
                line.tax_rate = treatment.rate
                line.tax_amount = round_money(line.amount * treatment.rate / HUNDRED, bill.currency)
