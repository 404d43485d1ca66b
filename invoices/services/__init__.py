"""Every write to invoices: keyword-only, one transaction, an audit row, side effects
after commit. State transitions are checked in `lifecycle._transition` only.

By topic: `lifecycle` (drafts, finalizing and numbering, voiding, uncollectible,
resending), `payments_received` (payments against an invoice and their reversals),
`credit_notes`, and `coupons` (redemptions). The public names are re-exported here, so
callers write `invoices.services.invoice_finalize(…)`; a test that patches one patches
it where the caller looks it up.
"""

from invoices.services.coupons import coupon_redeem
from invoices.services.credit_notes import credit_note_create
from invoices.services.lifecycle import (
    LEDGER_KIND,
    billing_snapshot,
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_resend,
    invoice_store_draft,
    invoice_void,
    invoices_finalize,
    invoices_store_drafts,
    ledger_reason,
    seller_snapshot,
)
from invoices.services.payments_received import (
    REVERSAL_LEDGER_KIND,
    invoice_record_payment,
    invoice_reverse_payment,
)

__all__ = [
    "LEDGER_KIND",
    "REVERSAL_LEDGER_KIND",
    "billing_snapshot",
    "coupon_redeem",
    "credit_note_create",
    "invoice_finalize",
    "invoice_mark_uncollectible",
    "invoice_record_payment",
    "invoice_resend",
    "invoice_reverse_payment",
    "invoice_store_draft",
    "invoice_void",
    "invoices_finalize",
    "invoices_store_drafts",
    "ledger_reason",
    "seller_snapshot",
]
