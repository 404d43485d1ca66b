"""Credits applied, unpaid balance carried forward, amount due and due date.

The credit ledger is every organisation's running account: credits' sync draws metered
usage from it minute by minute (a postpaid balance goes negative, down to its credit
limit), finalization draws the rest of the total (overage, minimum, tax, less
discounts), and invoice payments put money back. So for everyone the amount due is what
the balance lacks after this invoice, up to its total, plus what earlier invoices left
unpaid. Prepaid organisations get a *statement* (usually nothing due); postpaid ones an
invoice due after their net terms.
"""

from __future__ import annotations

from datetime import timedelta

from core.money import ZERO, round_money
from invoices import selectors, sources
from invoices.pipeline import BillingContext


class CreditsAndBalance:
    requires = frozenset({"totals"})
    provides = frozenset({"balance"})

    def __call__(self, ctx: BillingContext) -> None:
        ids = list(ctx.bills)
        balances = sources.credit_balances({i: b.currency for i, b in ctx.bills.items()})
        unpaid = selectors.unpaid_before(ids, ctx.period_start)
        for org_id, bill in list(ctx.bills.items()):
            org = bill.organization
            carried = unpaid.get(org_id, [])
            bill.carried_invoice_ids = [inv_id for inv_id, _ in carried]
            bill.balance_forward = sum((remaining for _, remaining in carried), ZERO)
            # The ledger already carries the metered usage (credits' sync draws it every
            # minute); finalization draws the rest of the total. What the balance then
            # lacks, up to this total, is due; earlier unpaid invoices come on top.
            already_drawn = sum((ln.amount for ln in bill.lines if ln.settled_by_metering), ZERO)
            after = balances.get(org_id, ZERO) - (bill.total - already_drawn)
            # The ledger holds unrounded usage: what is due is rounded once, here.
            shortfall = round_money(min(max(-after, ZERO), bill.total), bill.currency) if bill.total > ZERO else ZERO
            bill.credit_applied = bill.total - shortfall
            bill.is_statement = org.is_prepaid
            bill.amount_due = shortfall + bill.balance_forward
            if bill.amount_due > ZERO:
                bill.due_at = ctx.now + timedelta(days=org.payment_terms_days)
            # Nothing to bill and nothing owed: no invoice at all.
            if not bill.lines and bill.balance_forward == ZERO:
                del ctx.bills[org_id]
