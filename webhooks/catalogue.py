"""The event catalogue: every type an endpoint may subscribe to, its payload version and
fields. docs/webhooks.md documents the same table; `services.emit` refuses data whose
keys are not exactly the type's fields, so the documented payload is the one sent.

A payload's shape changes only with its `version`: a field added is a new version, and
receivers read `version` before `data`. Amounts are decimal strings in the `currency`
given beside them (never floats), times ISO 8601 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    description: str
    fields: dict[str, str]
    example: dict


INVOICE_FIELDS = {
    "invoice_id": "The invoice's id (GET /api/v1/invoices/{id}).",
    "number": "Its number, e.g. INV-2026-000042.",
    "status": "open, paid or uncollectible.",
    "period_start": "The billed period's start (inclusive).",
    "period_end": "Its end (exclusive).",
    "currency": "ISO 4217 code of every amount.",
    "total": "The invoice's total.",
    "amount_due": "What is owed after credit applied.",
    "due_at": "When payment is due; null when nothing is due.",
}
INVOICE_EXAMPLE = {
    "invoice_id": 42, "number": "INV-2026-000042", "status": "open", "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z", "currency": "EUR", "total": "119.00", "amount_due": "119.00",
    "due_at": "2026-12-15T02:00:00Z",
}
PAYMENT_FIELDS = {
    "payment_id": "The payment's id (GET /api/v1/payments/{id}).",
    "purpose": "invoice or topup.",
    "provider": "stripe, paypal, sandbox or bank_transfer.",
    "currency": "ISO 4217 code.",
    "amount": "The payment's amount.",
    "invoice_id": "The invoice it pays; null for a top-up.",
    "failure_code": "The provider's decline code; empty unless failed.",
}
PAYMENT_EXAMPLE = {"payment_id": 7, "purpose": "invoice", "provider": "stripe", "currency": "EUR",
                   "amount": "119.00", "invoice_id": 42, "failure_code": ""}

_TYPES = [
    EventType("invoice.finalized", 1, "An invoice was numbered and issued.", INVOICE_FIELDS, INVOICE_EXAMPLE),
    EventType("invoice.paid", 1, "An invoice is paid in full (by payments, credit or at issue when nothing was due).",
              INVOICE_FIELDS, {**INVOICE_EXAMPLE, "status": "paid"}),
    EventType("invoice.overdue", 1, "An open invoice passed its due date unpaid (sent once per invoice).",
              INVOICE_FIELDS, INVOICE_EXAMPLE),
    EventType("payment.succeeded", 1, "A payment succeeded at the provider.", PAYMENT_FIELDS, PAYMENT_EXAMPLE),
    EventType("payment.failed", 1, "A payment failed (declined, expired, refused).", PAYMENT_FIELDS,
              {**PAYMENT_EXAMPLE, "failure_code": "card_declined"}),
    EventType("payment.refunded", 1, "A refund of a payment succeeded.", {
        "refund_id": "The refund's id (GET /api/v1/refunds/{id}).",
        "payment_id": "The payment refunded.",
        "currency": "ISO 4217 code.",
        "amount": "This refund's amount.",
        "amount_refunded": "Everything refunded of the payment so far.",
        "fully_refunded": "true once the whole payment is refunded.",
    }, {"refund_id": 3, "payment_id": 7, "currency": "EUR", "amount": "19.00", "amount_refunded": "19.00",
        "fully_refunded": False}),
    EventType("topup.succeeded", 1, "A top-up (manual or automatic) was credited to the balance.", {
        "topup_id": "The top-up's id (GET /api/v1/credits/topups/{id}).",
        "source": "manual or auto.",
        "currency": "ISO 4217 code.",
        "amount": "What was credited.",
        "ledger_entry_id": "The ledger entry that credited it.",
    }, {"topup_id": 5, "source": "manual", "currency": "EUR", "amount": "50.00", "ledger_entry_id": 901}),
    EventType("credit.low", 1, "The balance crossed a warning threshold (runway hours or a low balance).", {
        "thresholds": "The thresholds newly crossed, e.g. [\"runway:24\", \"balance:10\"].",
        "currency": "ISO 4217 code.",
        "balance": "The balance now.",
        "burn_rate_per_hour": "What running resources cost an hour.",
        "runway_hours": "Hours the balance lasts at that rate; null when nothing runs.",
    }, {"thresholds": ["runway:24"], "currency": "EUR", "balance": "12.50", "burn_rate_per_hour": "0.75",
        "runway_hours": "16.67"}),
    EventType("credit.exhausted", 1, "A prepaid balance is spent past its grace: its running resources hibernate "
              "now (resource.hibernated follows in the same transaction).", {
                  "currency": "ISO 4217 code.",
                  "balance": "The balance now (zero or below).",
              }, {"currency": "EUR", "balance": "-0.42"}),
    EventType("resource.hibernated", 1, "Resources were hibernated because credit ran out or a budget's hard cap "
              "was reached (the reason says which).", {
        "resource_ids": "The resources hibernated.",
        "reason": "Why, in words.",
    }, {"resource_ids": [11, 12], "reason": "Credit exhausted: balance €-0.42"}),
    EventType("resource.resumed", 1, "Resources hibernated for credit or by a budget's hard cap were resumed.", {
        "resource_ids": "The resources resumed.",
        "reason": "Why, in words.",
    }, {"resource_ids": [11, 12], "reason": "Credit restored: balance €50.00"}),
    EventType("resource.deletion_scheduled", 1, "A notice of the zero-balance ladder: resources hibernated for lack "
              "of credit will have their disks deleted on the date named unless a top-up comes first.", {
                  "resource_ids": "The resources still hibernated.",
                  "hibernated_at": "When they were hibernated for lack of credit.",
                  "notice_day": "Which notice (days after the hibernation).",
                  "deletion_scheduled_at": "When their disks will be deleted; null when this organisation's "
                                           "resources are never deleted.",
              }, {"resource_ids": [11, 12], "hibernated_at": "2026-12-01T10:00:00+00:00", "notice_day": 7,
                  "deletion_scheduled_at": "2026-12-15T10:00:00+00:00"}),
    EventType("resource.deletion_requested", 1, "The platform was asked (signed provisioning request "
              "delete_disks) to delete the disks of resources hibernated for lack of credit.", {
                  "resource_ids": "The resources whose disks are deleted.",
                  "hibernated_at": "When they were hibernated for lack of credit.",
                  "provisioning_request_id": "The provisioning request (provreq_<id> at the platform).",
              }, {"resource_ids": [11, 12], "hibernated_at": "2026-12-01T10:00:00+00:00",
                  "provisioning_request_id": 77}),
    EventType("budget.threshold_crossed", 1, "A budget's alert threshold was crossed, on actual month-to-date spend "
              "or on the forecast to the month's end (once per crossing; re-armed next month or when the amount "
              "is raised).", {
                  "budget_id": "The budget (GET /api/v1/budgets/{id}).",
                  "name": "The budget's name.",
                  "scope": "What it covers: organization, or project (the budget's `project` in the API).",
                  "month": "The month, its first day (UTC).",
                  "kind": "actual (spend so far) or forecast (spend forecast to the month's end).",
                  "threshold": "The percentage of the amount crossed (the highest when several were at once).",
                  "currency": "ISO 4217 code.",
                  "amount": "The budget's monthly amount.",
                  "spend": "The actual or forecast spend that crossed it.",
                  "cap_amount": "The hard cap; null when none.",
              }, {"budget_id": 4, "name": "GPU fleet", "scope": "organization", "month": "2026-12-01",
                  "kind": "actual", "threshold": 80, "currency": "EUR", "amount": "1000.00", "spend": "812.40",
                  "cap_amount": "1200.00"}),
    EventType("dunning.step", 1, "An automatic invoice payment failed: a retry is scheduled, or the final action "
              "was taken.", {
                  "invoice_id": "The invoice being collected.",
                  "attempt": "Which attempt failed (0: the first charge).",
                  "status": "active (a retry follows) or exhausted (no more retries).",
                  "next_retry_at": "When the next retry runs; null when exhausted.",
                  "final_action": "mark_uncollectible or suspend once exhausted; empty before.",
                  "message": "The failure, in words.",
              }, {"invoice_id": 42, "attempt": 1, "status": "active", "next_retry_at": "2026-12-18T02:00:00Z",
                  "final_action": "", "message": "Your card was declined."}),
]

EVENT_TYPES: dict[str, EventType] = {t.name: t for t in _TYPES}
# Sent by the "send test event" button to that one endpoint, whatever it subscribes to.
TEST_EVENT = EventType("webhook.test", 1, "A test event sent from the portal, the console or the API.", {
    "message": "Says it is a test.",
}, {"message": "This is a test event from cloudbill."})
ALL_TYPES: dict[str, EventType] = {**EVENT_TYPES, TEST_EVENT.name: TEST_EVENT}
SUBSCRIBABLE = tuple(EVENT_TYPES)
