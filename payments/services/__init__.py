"""Every write to payments: keyword-only, one transaction, audited; provider calls outside
transactions (they are slow and may hang), their results applied under the row lock.

The one rule for provider news (webhooks, return pages, reconciliation, synchronous
charge results) is `payment_apply_snapshot`: it moves a payment forward to what the
provider says, ignores news older than what we know, and applies the payment's effect
exactly once, in the transaction that makes it `succeeded`.

By topic: `lifecycle` (amounts, creating and charging payments, provider news, the row
lock and status moves the others use), `refunds`, and `methods` (saved cards). The
public names are re-exported here, so callers write `payments.services.refund_request(…)`;
a test that patches one patches it in its topic module.
"""

from payments.services.lifecycle import (
    invoice_open_amount,
    payment_apply_snapshot,
    payment_cancel,
    payment_charge_saved_method,
    payment_confirm_start,
    payment_create,
    payment_mark_disputed,
    payment_record_bank_transfer,
    payment_report_provider_error,
    payment_start_checkout,
    payment_supersede_checkouts,
    validate_topup_amount,
)
from payments.services.methods import (
    default_method,
    payment_method_detach,
    payment_method_save,
    payment_method_save_safely,
    payment_method_set_default,
)
from payments.services.refunds import (
    RefundNeedsPerson,
    refund_apply_snapshot,
    refund_flag,
    refund_record_provider_reversal,
    refund_request,
    refund_submit,
)

__all__ = [
    "RefundNeedsPerson",
    "default_method",
    "invoice_open_amount",
    "payment_apply_snapshot",
    "payment_cancel",
    "payment_charge_saved_method",
    "payment_confirm_start",
    "payment_create",
    "payment_mark_disputed",
    "payment_method_detach",
    "payment_method_save",
    "payment_method_save_safely",
    "payment_method_set_default",
    "payment_record_bank_transfer",
    "payment_report_provider_error",
    "payment_start_checkout",
    "payment_supersede_checkouts",
    "refund_apply_snapshot",
    "refund_flag",
    "refund_record_provider_reversal",
    "refund_request",
    "refund_submit",
    "validate_topup_amount",
]
