"""An invoice's life: storing the draft, finalizing (numbering), voiding, uncollectible.

Every status change goes through `_transition`, the one place `TRANSITIONS` is checked;
`_settle` marks an invoice paid together with every earlier invoice whose balance it
carried. The draft is computed before it is stored (`invoice_store_draft`, idempotent
per organisation and period), so `invoice_finalize` holds the numbering lock for a few
short statements only; it draws from the credit ledger what metering has not drawn
already, and a void gives exactly that back. Side effects (PDF, email) run after commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import ApiKey, Organization, User
from core.errors import Conflict, DomainError
from core.money import ZERO
from credits.services import ledger_post
from invoices import numbering, selectors
from invoices.models import TRANSITIONS, Invoice, InvoiceLine, InvoiceStatus
from invoices.pipeline import Bill, BillingContext

LEDGER_KIND = "invoice_settlement"


def _transition(invoice: Invoice, to: str) -> None:
    if to not in TRANSITIONS[invoice.status]:
        raise Conflict(f"A {invoice.get_status_display().lower()} invoice cannot become {to}.", code="invalid_transition")
    invoice.status = to


def billing_snapshot(org: Organization) -> dict:
    fields = ("name", "legal_name", "billing_email", "address_line1", "address_line2", "city", "postal_code",
              "region", "country", "vat_id", "tax_exempt", "billing_mode", "payment_terms_days")
    return {f: getattr(org, f) for f in fields}


def seller_snapshot() -> dict:
    return dict(settings.INVOICE_SELLER)


def invoice_store_draft(*, bill: Bill, ctx: BillingContext) -> Invoice | None:
    """Store (or rebuild) the draft of `bill` for the context's period, in one
    transaction. Returns None when the period already has a finalized invoice: a rerun
    fills only what is missing.

    The usual case, a period not invoiced yet, is a plain INSERT (the invoice, then its
    lines in one statement). If the unique (organisation, period) says an invoice exists
    (a rerun, a draft left by a crash, a concurrent worker), that transaction rolls back
    whole and the existing invoice is locked and rebuilt instead."""
    try:
        with transaction.atomic():
            return _write_draft(bill=bill, ctx=ctx, invoice=None)
    except IntegrityError:
        pass
    with transaction.atomic():
        invoice, created = Invoice.objects.select_for_update().get_or_create(
            organization=bill.organization, period_start=ctx.period_start,
            defaults={"period_end": ctx.period_end, "currency": bill.currency},
        )
        if invoice.status != InvoiceStatus.DRAFT:
            return None
        if not created:
            invoice.lines.all().delete()
        return _write_draft(bill=bill, ctx=ctx, invoice=invoice)


def _write_draft(*, bill: Bill, ctx: BillingContext, invoice: Invoice | None) -> Invoice | None:
    # Earlier unpaid invoices, re-read under lock: a payment that landed since the
    # pipeline read them is honoured.
    carried = []
    if bill.carried_invoice_ids:
        carried = list(Invoice.objects.select_for_update().filter(pk__in=bill.carried_invoice_ids,
                                                                  carried_to__isnull=True))
    forward = sum((inv.amount_due - inv.amount_paid - selectors.credited_total(inv) for inv in carried), ZERO)
    forward = max(forward, ZERO)
    amount_due = bill.amount_due - bill.balance_forward + forward
    if not bill.lines and forward == ZERO:
        if invoice is not None:
            invoice.delete()
        return None
    if invoice is None:
        invoice = Invoice(organization=bill.organization, period_start=ctx.period_start)
    for name, value in {
        "period_end": ctx.period_end, "currency": bill.currency, "is_statement": bill.is_statement,
        "subtotal": bill.subtotal, "discount_total": bill.discount_total, "tax_total": bill.tax_total,
        "total": bill.total, "credit_applied": bill.credit_applied, "balance_forward": forward,
        "amount_due": amount_due, "tax_note": bill.tax_note, "due_at": bill.due_at,
    }.items():
        setattr(invoice, name, value)
    invoice.save()
    InvoiceLine.objects.bulk_create([
        InvoiceLine(
            invoice=invoice, position=i, kind=ln.kind, group=ln.group[:200], description=ln.description[:300],
            product_code=ln.product_code, product_id=ln.product_id, resource_id=ln.resource_id, price_id=ln.price_id,
            state=ln.state, coupon_redemption_id=ln.coupon_redemption_id, service_start=ln.service_start,
            service_end=ln.service_end, quantity=ln.quantity, unit=ln.unit, unit_price=ln.unit_price,
            amount=ln.amount, tax_rate=ln.tax_rate, tax_amount=ln.tax_amount,
            settled_by_metering=ln.settled_by_metering,
        )
        for i, ln in enumerate(bill.lines, start=1)
    ])
    if carried:
        Invoice.objects.filter(pk__in=[inv.pk for inv in carried]).update(carried_to=invoice)
    return invoice


def _credit_drawn_at_finalize(invoice: Invoice) -> Decimal:
    """What finalization draws from the credit ledger: the part of the total that
    metering has not drawn already (see handlers/balance.py)."""
    metered = invoice.lines.filter(settled_by_metering=True).aggregate(s=Sum("amount", default=ZERO))["s"]
    return invoice.total - metered


def invoice_finalize(
    *, invoice: Invoice, actor: User | None = None, api_key: ApiKey | None = None,
    render_pdf: bool = True, now: datetime | None = None,
) -> Invoice:
    """Number, snapshot and open a stored draft, in one short transaction: the invoice
    was computed before it, so the numbering lock is held for milliseconds."""
    now = now or timezone.now()
    with transaction.atomic():
        inv = Invoice.objects.select_for_update(no_key=True).select_related("organization").get(pk=invoice.pk)
        if inv.status != InvoiceStatus.DRAFT:
            # Not only a transition check: PAID -> OPEN is legal (a refund reopens an
            # invoice), but finalizing once more would renumber it and draw again.
            raise Conflict(f"Invoice {inv.number or inv.pk} is {inv.get_status_display().lower()}: "
                           "only a draft is finalized.", code="invalid_transition")
        _transition(inv, InvoiceStatus.OPEN)
        org = inv.organization
        drawn = _credit_drawn_at_finalize(inv)
        inv.issued_at = now
        inv.billing_details = billing_snapshot(org)
        inv.seller_details = seller_snapshot()
        if inv.amount_due > ZERO:
            inv.due_at = now + timedelta(days=org.payment_terms_days)
        else:
            inv.due_at = None
            inv.status = InvoiceStatus.PAID
            inv.paid_at = now
        # The counter is locked from here to the commit: only a few short statements.
        inv.number = numbering.next_number(numbering.INVOICE_SERIES, now.year)
        inv.save(update_fields=["status", "number", "issued_at", "billing_details", "seller_details", "due_at",
                                "paid_at", "updated_at"])
        if drawn != ZERO:
            ledger_post(
                organization=org, amount=-drawn, kind=LEDGER_KIND, reference=f"invoice:{inv.pk}",
                reason=f"{'Statement' if inv.is_statement else 'Invoice'} {inv.number}",
            )
        audit_record(
            "invoice.finalized", actor=actor, api_key=api_key, organization=org, obj=inv,
            changes={"number": inv.number, "total": inv.total, "amount_due": inv.amount_due},
        )
        if render_pdf:
            from core import outbox

            outbox.enqueue("invoices.render_pdf", inv.pk)
    return inv


@transaction.atomic
def invoice_void(
    *, invoice: Invoice, reason: str, actor: User | None = None, api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> Invoice:
    if not reason.strip():
        raise DomainError("Say why the invoice is voided.", field="reason")
    inv = Invoice.objects.select_for_update(no_key=True).select_related("organization").get(pk=invoice.pk)
    was = inv.status
    _transition(inv, InvoiceStatus.VOID)
    if inv.amount_paid > ZERO:
        raise Conflict("This invoice has payments; issue a credit note instead.", code="invalid_transition")
    inv.voided_at = now or timezone.now()
    inv.save(update_fields=["status", "voided_at", "updated_at"])
    if was != InvoiceStatus.DRAFT:
        drawn = _credit_drawn_at_finalize(inv)
        if drawn != ZERO:
            ledger_post(
                organization=inv.organization, amount=drawn, kind=LEDGER_KIND, reference=f"invoice:{inv.pk}:void",
                reason=f"Void of {inv.number}",
            )
    # What this invoice carried forward is owed again on the invoices it came from.
    Invoice.objects.filter(carried_to=inv).update(carried_to=None)
    audit_record("invoice.voided", actor=actor, api_key=api_key, organization=inv.organization, obj=inv,
                 reason=reason, changes={"status": [was, InvoiceStatus.VOID]})
    return inv


@transaction.atomic
def invoice_mark_uncollectible(
    *, invoice: Invoice, reason: str, actor: User | None = None, api_key: ApiKey | None = None
) -> Invoice:
    inv = Invoice.objects.select_for_update().get(pk=invoice.pk)
    was = inv.status
    _transition(inv, InvoiceStatus.UNCOLLECTIBLE)
    inv.save(update_fields=["status", "updated_at"])
    audit_record("invoice.marked_uncollectible", actor=actor, api_key=api_key, organization=inv.organization,
                 obj=inv, reason=reason, changes={"status": [was, inv.status]})
    return inv


def _settle(inv: Invoice, now: datetime) -> None:
    """Mark paid, with every earlier invoice whose balance it carried."""
    _transition(inv, InvoiceStatus.PAID)
    inv.paid_at = now
    for earlier in Invoice.objects.select_for_update().filter(carried_to=inv).exclude(status=InvoiceStatus.PAID):
        _settle(earlier, now)
        earlier.save(update_fields=["status", "paid_at", "updated_at"])


@transaction.atomic
def invoice_resend(*, invoice: Invoice, actor: User | None = None, api_key: ApiKey | None = None) -> None:
    if invoice.number is None:
        raise Conflict("Only issued invoices are sent.")
    audit_record("invoice.resent", actor=actor, api_key=api_key, organization=invoice.organization, obj=invoice)
    from core import outbox

    outbox.enqueue("invoices.email", invoice.pk, force=True)
