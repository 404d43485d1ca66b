"""Which Celery queue each task goes to: one queue per kind of work.

Read by the settings (task routes) and by `make run`'s launcher (the worker's -Q), which
does not import Django. Every task is listed: core/tests/test_celery_routes.py refuses a
registered task without a queue and a name here that no task has.
"""

from __future__ import annotations

QUEUES_BY_KIND: dict[str, tuple[str, ...]] = {
    # the minute's work: rating, rollups, balances, hibernate/resume at the platform
    "metering": ("usage.meter", "usage.meter_chunk", "usage.rollup", "credits.sync_pending",
                 "credits.hibernate_due", "credits.resume", "credits.provisioning_deliver",
                 "credits.provisioning_retry"),
    "invoicing": ("invoices.monthly_run", "invoices.invoice_chunk", "invoices.invoice_organization"),
    "documents": ("invoices.render_pdf", "invoices.email", "invoices.credit_note_email", "credits.email_event",
                  "payments.receipt_email"),
    "payments": ("payments.payment_succeeded", "payments.payment_failed", "payments.payment_disputed",
                 "payments.payment_charge", "payments.payment_action_required", "payments.payment_provider_error",
                 "payments.payment_amount_mismatch",
                 "payments.refund_submit", "payments.paypal_capture", "payments.payment_method_detach",
                 "payments.autopay_invoice", "payments.autopay_due", "payments.dunning_due", "payments.reconcile",
                 "credits.topup_dispatch", "credits.topup_retry", "credits.auto_topup_check"),
    # waits on customers' servers (up to WEBHOOKS_TIMEOUT each): never in front of payments
    "webhooks": ("webhooks.dispatch", "webhooks.deliver", "webhooks.deliver_due", "webhooks.endpoint_disabled_email"),
    # budgets' figures (an interim bill per organisation) every few minutes, their alert
    # emails and hard caps: never in front of the minute's metering
    "budgets": ("budgets.evaluate", "budgets.alert_email"),
    "maintenance": ("core.purge_idempotency_records", "core.outbox_relay", "usage.retention", "credits.runway",
                    "credits.promo_expiry", "credits.ladder_due", "finance.build_journal", "gnocchi_export.export",
                    "invoices.overdue_webhooks"),
}
