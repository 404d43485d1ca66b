"""Every write to invoices: keyword-only, one transaction, an audit row, side effects
after commit. State transitions are checked in `_transition` only."""

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
from core.money import ZERO, round_money
from credits.services import ledger_post
from invoices import numbering, selectors
from invoices.models import (
    TRANSITIONS,
    Coupon,
    CouponRedemption,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    InvoicePaymentReversal,
    InvoiceStatus,
)
from invoices.pipeline import Bill, BillingContext

HUNDRED = Decimal(100)
LEDGER_KIND = "invoice_settlement"
# Money given back touches paid credit only, never promotional credit.
REVERSAL_LEDGER_KIND = "refund"


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
        inv = Invoice.objects.select_for_update().select_related("organization").get(pk=invoice.pk)
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
            from invoices.tasks import invoice_render_pdf_task

            transaction.on_commit(lambda: invoice_render_pdf_task.delay(inv.pk))
    return inv


@transaction.atomic
def invoice_void(
    *, invoice: Invoice, reason: str, actor: User | None = None, api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> Invoice:
    if not reason.strip():
        raise DomainError("Say why the invoice is voided.", field="reason")
    inv = Invoice.objects.select_for_update().select_related("organization").get(pk=invoice.pk)
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


def invoice_record_payment(
    *, invoice: Invoice, amount: Decimal, reference: str, currency: str | None = None,
    received_at: datetime | None = None, actor: User | None = None, api_key: ApiKey | None = None,
) -> InvoicePayment:
    """Record a payment received for an invoice. Idempotent on `reference`: the same
    reference again returns the first payment and changes nothing. Partial payments add
    up; the invoice is paid when nothing remains."""
    if not isinstance(amount, Decimal) or amount <= ZERO:
        raise DomainError("A payment amount is a positive Decimal.", field="amount")
    if not reference:
        raise DomainError("A payment needs a reference.", field="reference")
    now = received_at or timezone.now()
    with transaction.atomic():
        inv = Invoice.objects.select_for_update().select_related("organization").get(pk=invoice.pk)
        existing = InvoicePayment.objects.filter(reference=reference).first()
        if existing is not None:
            if existing.invoice_id != inv.pk or existing.amount != amount:
                raise Conflict("This payment reference was already used for another payment.", field="reference")
            return existing
        if currency is not None and currency != inv.currency:
            raise DomainError(f"This invoice is in {inv.currency}.", field="currency")
        if amount != round_money(amount, inv.currency):
            raise DomainError("A payment is a whole number of minor units.", field="amount")
        if inv.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            raise Conflict(f"A {inv.get_status_display().lower()} invoice takes no payments.")
        if inv.carried_to_id is not None:
            carried = Invoice.objects.get(pk=inv.carried_to_id)
            raise Conflict(f"This balance was carried to {carried.number or 'a later invoice'}; pay that one.")
        remaining = inv.amount_due - inv.amount_paid - selectors.credited_total(inv)
        if amount > remaining:
            raise Conflict(f"Only {remaining} {inv.currency} remains to be paid.", field="amount")
        payment = InvoicePayment.objects.create(
            invoice=inv, amount=amount, currency=inv.currency, reference=reference, received_at=now
        )
        inv.amount_paid += amount
        if amount == remaining:
            _settle(inv, now)
        inv.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])
        # The amount due is what the ledger lacks: the payment puts it back.
        ledger_post(
            organization=inv.organization, amount=amount, kind=LEDGER_KIND,
            reference=f"invoice_payment:{payment.pk}", reason=f"Payment of {inv.number}",
        )
        audit_record("invoice.payment_recorded", actor=actor, api_key=api_key, organization=inv.organization,
                     obj=inv, changes={"amount": amount, "reference": reference, "status": inv.status})
    return payment


def _unsettle(inv: Invoice) -> None:
    """Open a paid invoice again, with every earlier invoice it settled by carrying its
    balance (those were paid only through this one)."""
    _transition(inv, InvoiceStatus.OPEN)
    inv.paid_at = None
    for earlier in Invoice.objects.select_for_update().filter(carried_to=inv, status=InvoiceStatus.PAID):
        _unsettle(earlier)
        earlier.save(update_fields=["status", "paid_at", "updated_at"])


def invoice_reverse_payment(
    *, invoice: Invoice, amount: Decimal, reference: str, payment_reference: str,
    reversed_at: datetime | None = None, reason: str = "", actor: User | None = None,
    api_key: ApiKey | None = None,
) -> InvoicePaymentReversal:
    """Give back `amount` of the payment recorded under `payment_reference` (a refund, a
    lost dispute). Idempotent on `reference`. The invoice's paid amount drops by it; a
    paid invoice is open again (and so is every invoice it settled by carrying its
    balance). The ledger gives back what `invoice_record_payment` put in, so the
    organisation's account lacks the amount again, once."""
    if not isinstance(amount, Decimal) or amount <= ZERO:
        raise DomainError("A reversal amount is a positive Decimal.", field="amount")
    if not reference:
        raise DomainError("A reversal needs a reference.", field="reference")
    now = reversed_at or timezone.now()
    with transaction.atomic():
        inv = Invoice.objects.select_for_update().select_related("organization").get(pk=invoice.pk)
        existing = InvoicePaymentReversal.objects.filter(reference=reference).first()
        if existing is not None:
            if existing.invoice_id != inv.pk or existing.amount != amount:
                raise Conflict("This reversal reference was already used for another reversal.", field="reference")
            return existing
        payment = InvoicePayment.objects.filter(invoice=inv, reference=payment_reference).first()
        if payment is None:
            raise DomainError(f"{inv.number} has no payment {payment_reference}.", field="payment_reference")
        if amount != round_money(amount, inv.currency):
            raise DomainError("A reversal is a whole number of minor units.", field="amount")
        reversed_before = payment.reversals.aggregate(s=Sum("amount"))["s"] or ZERO
        if amount > payment.amount - reversed_before:
            raise Conflict(f"Only {payment.amount - reversed_before} {inv.currency} of {payment_reference} "
                           "is left to reverse.", field="amount")
        reversal = InvoicePaymentReversal.objects.create(
            invoice=inv, payment=payment, amount=amount, currency=inv.currency, reference=reference, reversed_at=now,
        )
        inv.amount_paid -= amount
        if inv.status == InvoiceStatus.PAID:
            _unsettle(inv)
        inv.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])
        ledger_post(
            organization=inv.organization, amount=-amount, kind=REVERSAL_LEDGER_KIND,
            reference=f"invoice_payment_reversal:{reversal.pk}",
            reason=(f"Reversal of a payment of {inv.number}" + (f": {reason}" if reason else ""))[:500],
        )
        audit_record("invoice.payment_reversed", actor=actor, api_key=api_key, organization=inv.organization,
                     obj=inv, reason=reason, changes={"amount": amount, "reference": reference,
                                                      "payment": payment_reference, "status": inv.status})
    return reversal


def credit_note_create(
    *, invoice: Invoice, reason: str, amount: Decimal | None = None, actor: User | None = None,
    api_key: ApiKey | None = None, now: datetime | None = None,
) -> CreditNote:
    """A correction of an issued invoice: `amount` before tax (default: all that is left
    to credit). It first reduces what is still owed on the invoice; the rest goes to the
    customer's credit balance (the whole credit is posted to the ledger)."""
    if not reason.strip():
        raise DomainError("Say why the invoice is credited.", field="reason")
    now = now or timezone.now()
    with transaction.atomic():
        inv = Invoice.objects.select_for_update().select_related("organization").get(pk=invoice.pk)
        if inv.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE):
            raise Conflict("Only issued invoices are credited; void a draft instead.")
        credited = selectors.credited_total(inv)
        left = inv.total - credited
        lines = list(inv.lines.all())
        rate = lines[0].tax_rate if lines else ZERO
        if amount is None:
            net = round_money(left * HUNDRED / (HUNDRED + rate), inv.currency)
        else:
            if not isinstance(amount, Decimal) or amount <= ZERO or amount != round_money(amount, inv.currency):
                raise DomainError("A credit is a positive amount in whole minor units.", field="amount")
            net = amount
        tax = round_money(net * rate / HUNDRED, inv.currency)
        total = net + tax
        if total <= ZERO or total > left:
            raise Conflict(f"At most {left} {inv.currency} (tax included) is left to credit on {inv.number}.",
                           field="amount")
        note = CreditNote.objects.create(
            invoice=inv, organization=inv.organization, number=numbering.next_number(numbering.CREDIT_NOTE_SERIES, now.year),
            currency=inv.currency, reason=reason, subtotal=net, tax_total=tax, total=total, issued_at=now,
            issued_by=actor if actor is not None and actor.is_authenticated else None,
            billing_details=inv.billing_details,
        )
        CreditNoteLine.objects.create(
            credit_note=note, description=f"Credit on {inv.number}: {reason}"[:300], amount=net, tax_rate=rate,
            tax_amount=tax,
        )
        owed = max(inv.amount_due - inv.amount_paid - credited, ZERO) if inv.carried_to_id is None else ZERO
        applied = min(owed, total)
        if inv.status != InvoiceStatus.PAID and applied == owed and owed > ZERO:
            _settle(inv, now)
            inv.save(update_fields=["status", "paid_at", "updated_at"])
        # The ledger is the account: the whole credit goes to it. The part that settled
        # what was owed on the invoice brings a negative balance back; the rest is credit.
        ledger_post(
            organization=inv.organization, amount=total, kind="adjustment",
            reference=f"credit_note:{note.pk}", reason=f"Credit note {note.number} on {inv.number}",
        )
        audit_record("invoice.credit_note_issued", actor=actor, api_key=api_key, organization=inv.organization,
                     obj=inv, reason=reason, changes={"credit_note": note.number, "total": total})
    return note


@transaction.atomic
def invoice_resend(*, invoice: Invoice, actor: User | None = None, api_key: ApiKey | None = None) -> None:
    if invoice.number is None:
        raise Conflict("Only issued invoices are sent.")
    audit_record("invoice.resent", actor=actor, api_key=api_key, organization=invoice.organization, obj=invoice)
    from invoices.tasks import invoice_email_task

    transaction.on_commit(lambda: invoice_email_task.delay(invoice.pk, force=True))


@transaction.atomic
def coupon_redeem(
    *, organization: Organization, coupon: Coupon, starts_at: datetime | None = None,
    actor: User | None = None, api_key: ApiKey | None = None,
) -> CouponRedemption:
    if not coupon.is_active:
        raise Conflict("This coupon is no longer active.", field="coupon")
    if coupon.currency and coupon.currency != organization.currency:
        raise DomainError(f"This coupon is in {coupon.currency}, the organisation pays in {organization.currency}.",
                          field="coupon")
    try:
        with transaction.atomic():
            redemption = CouponRedemption.objects.create(
                coupon=coupon, organization=organization, starts_at=starts_at or timezone.now()
            )
    except IntegrityError:
        raise Conflict("This organisation already has this coupon.", field="coupon") from None
    audit_record("coupon.redeemed", actor=actor, api_key=api_key, organization=organization, obj=redemption,
                 changes={"coupon": coupon.code})
    return redemption
