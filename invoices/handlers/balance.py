"""Credits applied, unpaid balance carried forward, amount due and due date.

Prepaid organisations get a statement: metered usage was already drawn from their credit
minute by minute; the rest of the total (monthly fees, overage, tax, less discounts) is
drawn at finalization. The amount due is zero unless that takes the balance below zero.
Postpaid organisations owe the total, less any positive credit balance (promotional
credit), plus what earlier invoices left unpaid; they have a due date (net terms).
"""

from __future__ import annotations

from datetime import timedelta

from core.money import ZERO
from invoices import selectors, sources
from invoices.pipeline import BillingContext


class CreditsAndBalance:
    def __call__(self, ctx: BillingContext) -> None:
        ids = list(ctx.bills)
        balances = sources.credit_balances({i: b.currency for i, b in ctx.bills.items()})
        unpaid = selectors.unpaid_before(ids, ctx.period_start)
        for org_id, bill in list(ctx.bills.items()):
            org = bill.organization
            carried = unpaid.get(org_id, [])
            bill.carried_invoice_ids = [inv_id for inv_id, _ in carried]
            bill.balance_forward = sum((remaining for _, remaining in carried), ZERO)
            balance = balances.get(org_id, ZERO)
            if org.is_prepaid:
                bill.is_statement = True
                already_drawn = sum((ln.amount for ln in bill.lines if ln.settled_by_metering), ZERO)
                to_draw = bill.total - already_drawn
                after = balance - to_draw
                shortfall = min(max(-after, ZERO), bill.total) if bill.total > ZERO else ZERO
                bill.credit_applied = bill.total - shortfall
            else:
                bill.credit_applied = min(max(balance, ZERO), max(bill.total, ZERO))
                bill.due_at = ctx.now + timedelta(days=org.payment_terms_days)
            bill.amount_due = bill.total - bill.credit_applied + bill.balance_forward
            if bill.amount_due > ZERO and bill.due_at is None:
                bill.due_at = ctx.now + timedelta(days=org.payment_terms_days)
            # Nothing to bill and nothing owed: no invoice at all.
            if not bill.lines and bill.balance_forward == ZERO:
                del ctx.bills[org_id]
