"""Every write to credit: keyword-only, one transaction, an audit row for people's changes.

By topic:

- `ledger`: posting, reversing and adjusting entries; the balance row lock and the
  bookkeeping every balance change does;
- `promo`: promotional grants and their expiry;
- `topups`: top-up requests, attempts, crediting a paid top-up, failures and retries;
- `auto_topup`: auto top-up settings and the check that starts one per crossing.

The functions are re-exported here: other apps call `credits.services.ledger_post(…)`
and need not know which module holds it. A test that patches one must patch it where
it is looked up (`credits.services.ledger._lock_balance`), not here.
"""

from credits.services.auto_topup import auto_topup_check, auto_topup_configure
from credits.services.ledger import (
    MAX_REASON_LENGTH,
    Post,
    balance_threshold,
    credit_adjust,
    ledger_post,
    ledger_post_many,
    ledger_reverse,
)
from credits.services.promo import promo_expire, promo_expire_due, promo_grant
from credits.services.topups import (
    auto_topup_failed,
    credit_topup,
    topup_amount_problem,
    topup_begin_attempt,
    topup_minimum,
    topup_request,
    topup_retry_delay,
    topups_due_for_retry,
    validate_topup_amount,
)

__all__ = [
    "MAX_REASON_LENGTH",
    "auto_topup_check",
    "auto_topup_configure",
    "auto_topup_failed",
    "balance_threshold",
    "credit_adjust",
    "credit_topup",
    "Post",
    "ledger_post",
    "ledger_post_many",
    "ledger_reverse",
    "promo_expire",
    "promo_expire_due",
    "promo_grant",
    "topup_amount_problem",
    "topup_begin_attempt",
    "topup_minimum",
    "topup_request",
    "topup_retry_delay",
    "topups_due_for_retry",
    "validate_topup_amount",
]
