"""The billing console: invoices (read-only once issued), credit notes, tax rates,
coupons and the monthly runs. Money-moving actions need their permission and a reason,
and go through the services (audited)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin_base import AuditedModelAdmin, ReadOnlyAdmin, ReadOnlyInline
from core.errors import DomainError
from core.formatting import format_date, format_month
from core.money import format_money
from invoices import selectors, services
from invoices.models import (
    Coupon,
    CouponRedemption,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    InvoicePayment,
    InvoicePaymentReversal,
    InvoiceRun,
    InvoiceRunItem,
    InvoiceStatus,
    TaxRate,
)
from invoices.services.credit_notes import LineCredit, LineLeft, credit_left
from invoices.templatetags.invoice_tags import line_figures


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    # Quantity, unit price and amount as the invoice shows them ("89.483 hours",
    # "$0.0298 / hour", "$2.67"): the stored quantity has twelve places.
    fields = ["position", "group", "description", "shown_quantity", "shown_unit_price", "amount", "tax_rate",
              "tax_amount"]
    readonly_fields = fields

    @admin.display(description="quantity")
    def shown_quantity(self, line: InvoiceLine) -> str:
        return line_figures(line, line.invoice.currency)["quantity"]

    @admin.display(description="unit price")
    def shown_unit_price(self, line: InvoiceLine) -> str:
        return line_figures(line, line.invoice.currency)["unit_price"]


class PaymentInline(InvoiceLineInline):
    model = InvoicePayment
    fields = ["reference", "amount", "currency", "received_at"]
    readonly_fields = fields


class PaymentReversalInline(InvoiceLineInline):
    model = InvoicePaymentReversal
    fields = ["reference", "payment", "amount", "currency", "reversed_at"]
    readonly_fields = fields
    verbose_name_plural = "payments given back (refunds, lost disputes)"


class PeriodFilter(admin.SimpleListFilter):
    title = "period"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        months = Invoice.objects.dates("period_start", "month", order="DESC")[:24]
        return [(f"{d:%Y-%m}", f"{d:%B %Y}") for d in months]

    def queryset(self, request, queryset):
        if self.value():
            year, month = (int(x) for x in self.value().split("-"))
            return queryset.filter(period_start__year=year, period_start__month=month)
        return queryset


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the audit trail.")
    amount = forms.CharField(required=False, help_text="Credit notes only: an amount before tax, spread over the "
                             "lines in proportion to what is left of each; empty credits all that is left. To credit "
                             "chosen lines, open the invoice: “Issue a credit note…”.")


def _decimal_or_none(raw: str, what: str) -> Decimal | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise forms.ValidationError(f"{what} is not a number.") from None
    if not value.is_finite():
        raise forms.ValidationError(f"{what} is not a number.")
    return value


class CreditNoteForm(forms.Form):
    """A credit note on one invoice: everything left, chosen lines (all that is left of
    each, a quantity or an amount before tax), or an amount before tax spread over the
    lines. One row per invoice line with something left."""

    HOW = [("all", "Everything left on the invoice"), ("lines", "The lines chosen below"),
           ("amount", "An amount before tax, spread over the lines in proportion to what is left of each")]
    how = forms.ChoiceField(choices=HOW, widget=forms.RadioSelect, initial="all", label="Credit")
    amount = forms.CharField(required=False, label="Amount before tax", help_text="Only for a spread amount.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Printed on the credit note and "
                             "recorded in the audit trail.")

    def __init__(self, *args, lefts: list[LineLeft], **kwargs):
        super().__init__(*args, **kwargs)
        self.lefts = [lf for lf in lefts if lf.amount != 0 or lf.tax != 0]
        for lf in self.lefts:
            pos = lf.line.position
            self.fields[f"rest_{pos}"] = forms.BooleanField(required=False, label="all that is left")
            self.fields[f"quantity_{pos}"] = forms.CharField(required=False, label="quantity")
            self.fields[f"amount_{pos}"] = forms.CharField(required=False, label="amount before tax")

    def rows(self):
        return [{"left": lf, "rest": self[f"rest_{lf.line.position}"], "quantity": self[f"quantity_{lf.line.position}"],
                 "amount": self[f"amount_{lf.line.position}"]} for lf in self.lefts]

    def clean(self):
        data = super().clean()
        how = data.get("how")
        data["line_credits"] = None
        data["spread_amount"] = None
        if how == "amount":
            try:
                data["spread_amount"] = _decimal_or_none(data.get("amount", ""), "The amount")
            except forms.ValidationError as exc:
                self.add_error("amount", exc)
                return data
            if data["spread_amount"] is None:
                self.add_error("amount", "Give the amount before tax to spread.")
        elif how == "lines":
            credits = []
            for lf in self.lefts:
                pos = lf.line.position
                try:
                    quantity = _decimal_or_none(data.get(f"quantity_{pos}", ""), "The quantity")
                    amount = _decimal_or_none(data.get(f"amount_{pos}", ""), "The amount")
                except forms.ValidationError as exc:
                    self.add_error(f"amount_{pos}", exc)
                    continue
                if data.get(f"rest_{pos}") or quantity is not None or amount is not None:
                    credits.append(LineCredit(position=pos, quantity=None if data.get(f"rest_{pos}") else quantity,
                                              amount=None if data.get(f"rest_{pos}") else amount))
            if not credits and not self.errors:
                raise forms.ValidationError("Choose at least one line: tick “all that is left” or give a quantity "
                                            "or an amount.")
            data["line_credits"] = credits
        return data


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    # Fits 1366 px (invoices/tests/test_browser_console.py): the period as its month, the
    # dates without times, a statement said in the status, no currency column (each amount
    # carries its symbol; the statement and currency filters stay).
    list_display = ["__str__", "organization", "period", "state", "total", "still_due", "amount_paid", "issued", "due"]
    list_filter = ["status", PeriodFilter, "is_statement", "currency", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["number", "organization__name", "organization__legal_name"]
    list_select_related = ["organization"]
    date_hierarchy = "period_start"
    inlines = [InvoiceLineInline, PaymentInline, PaymentReversalInline]
    actions = ["finalize", "void", "resend", "credit_note"]
    readonly_fields = ["credit_note_link", *(f.name for f in Invoice._meta.fields)]

    @admin.display(description="Credit notes")
    def credit_note_link(self, obj):
        notes = ", ".join(n.number for n in obj.credit_notes.all()) or "none yet"
        return format_html('{} · <a href="{}">Issue a credit note…</a>', notes,
                           reverse("admin:invoices_invoice_credit_note", args=[obj.pk]))

    def get_urls(self):
        return [path("<int:pk>/credit-note/", self.admin_site.admin_view(self.credit_note_view),
                     name="invoices_invoice_credit_note"), *super().get_urls()]

    def credit_note_view(self, request, pk: int):
        """Issue one credit note on one invoice, line by line (needs `credit_invoice`)."""
        if not self.has_credit_permission(request):
            raise PermissionDenied
        invoice = get_object_or_404(Invoice, pk=pk)
        lefts = credit_left(invoice)
        form = CreditNoteForm(request.POST or None, lefts=lefts)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                note = services.credit_note_create(invoice=invoice, reason=data["reason"], actor=request.user,
                                                   amount=data["spread_amount"], lines=data["line_credits"])
            except DomainError as exc:
                field = exc.field or ""
                parts = field.split(".")
                if len(parts) >= 2 and parts[0] == "lines":
                    target = f"{parts[2] if len(parts) > 2 else 'amount'}_{parts[1]}"
                    form.add_error(target if target in form.fields else None, exc.message)
                else:
                    form.add_error("amount" if field == "amount" and data["how"] == "amount" else None, exc.message)
            else:
                messages.success(request, f"Credit note {note.number} issued: {format_money(note.total, note.currency)}.")
                return redirect("admin:invoices_creditnote_change", note.pk)
        left_total = invoice.total - sum((n.total for n in invoice.credit_notes.all()), Decimal(0))
        return TemplateResponse(request, "admin/invoices/credit_note.html", {
            **self.admin_site.each_context(request), "title": f"Credit note on {invoice}", "invoice": invoice,
            "form": form, "left_total": left_total, "opts": self.model._meta,
        })

    def has_add_permission(self, request):
        return False  # invoices are made by the engines, never by hand

    def get_queryset(self, request):
        return selectors.with_still_due(super().get_queryset(request))

    @admin.display(description="period", ordering="period_start")
    def period(self, obj: Invoice) -> str:
        return format_month(obj.period_start)

    @admin.display(description="status", ordering="status")
    def state(self, obj: Invoice) -> str:
        return f"{obj.get_status_display()} (statement)" if obj.is_statement else obj.get_status_display()

    @admin.display(description="issued", ordering="issued_at")
    def issued(self, obj: Invoice) -> str:
        return format_date(obj.issued_at)

    @admin.display(description="due", ordering="due_at")
    def due(self, obj: Invoice) -> str:
        return format_date(obj.due_at)

    @admin.display(description="amount due", ordering="still_due")
    def still_due(self, obj: Invoice) -> str:
        # What is still due after payments and credit notes: 0 on a paid invoice (the
        # amount due at issue stays on the invoice itself).
        return format_money(obj.still_due, obj.currency)

    def has_change_permission(self, request, obj=None):
        # Read-only always: drafts are rebuilt by the engine, issued invoices never change.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_finalize_permission(self, request):
        return request.user.has_perm("invoices.finalize_invoice")

    def has_void_permission(self, request):
        return request.user.has_perm("invoices.void_invoice")

    def has_credit_permission(self, request):
        return request.user.has_perm("invoices.credit_invoice")

    @admin.action(description="Finalize selected drafts", permissions=["finalize"])
    def finalize(self, request, queryset):
        done = 0
        for invoice in queryset.filter(status=InvoiceStatus.DRAFT):
            services.invoice_finalize(invoice=invoice, actor=request.user)
            done += 1
        messages.success(request, f"Finalized {done} invoice(s).")

    @admin.action(description="Resend selected invoices by email", permissions=["finalize"])
    def resend(self, request, queryset):
        sent = 0
        for invoice in queryset.exclude(number=None):
            services.invoice_resend(invoice=invoice, actor=request.user)
            sent += 1
        messages.success(request, f"Queued {sent} email(s).")

    def _with_reason(self, request, queryset, title, action, apply):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            ok = 0
            for invoice in queryset:
                try:
                    apply(invoice, form.cleaned_data)
                    ok += 1
                except DomainError as exc:
                    messages.error(request, f"{invoice}: {exc.message}")
            if ok:
                messages.success(request, f"{title}: {ok} invoice(s).")
            return None
        return TemplateResponse(request, "admin/invoices/reason.html", {
            **self.admin_site.each_context(request), "title": title, "form": form, "queryset": queryset,
            "action": action, "opts": self.model._meta, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })

    @admin.action(description="Void selected invoices…", permissions=["void"])
    def void(self, request, queryset):
        return self._with_reason(request, queryset, "Void", "void", lambda inv, data: services.invoice_void(
            invoice=inv, reason=data["reason"], actor=request.user))

    @admin.action(description="Issue a credit note…", permissions=["credit"])
    def credit_note(self, request, queryset):
        def apply(inv, data):
            amount = None
            if data["amount"]:
                try:
                    amount = Decimal(data["amount"])
                except InvalidOperation:
                    raise DomainError("Amount is not a number.") from None
            services.credit_note_create(invoice=inv, reason=data["reason"], amount=amount, actor=request.user)

        return self._with_reason(request, queryset, "Credit note", "credit_note", apply)


class CreditNoteLineInline(InvoiceLineInline):
    model = CreditNoteLine
    fields = ["position", "invoice_line", "description", "quantity", "unit", "unit_price", "amount", "tax_rate",
              "tax_amount"]
    readonly_fields = fields


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    """Credit notes are issued from their invoice (“Issue a credit note…”), never edited."""

    list_display = ["number", "invoice", "organization", "subtotal", "tax_total", "total", "currency", "issued_at",
                    "issued_by", "emailed_at"]
    list_filter = ["currency", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["number", "invoice__number", "organization__name"]
    list_select_related = ["invoice", "organization", "issued_by"]
    date_hierarchy = "issued_at"
    inlines = [CreditNoteLineInline]


@admin.register(TaxRate)
class TaxRateAdmin(AuditedModelAdmin):
    list_display = ["country", "name", "rate", "valid_from", "valid_to"]
    list_filter = ["country"]


@admin.register(Coupon)
class CouponAdmin(AuditedModelAdmin):
    list_display = ["code", "name", "kind", "percent_off", "amount_off", "currency", "duration_periods", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(AuditedModelAdmin):
    list_display = ["coupon", "organization", "starts_at", "created_at"]
    autocomplete_fields = ["organization"]
    search_fields = ["coupon__code", "organization__name"]


class RunItemInline(InvoiceLineInline):
    model = InvoiceRunItem
    fields = ["organization", "status", "attempts", "last_error", "invoice", "updated_at"]
    readonly_fields = fields


@admin.register(InvoiceRun)
class InvoiceRunAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "status", "started_at", "finished_at"]
    list_filter = ["status"]


@admin.register(InvoiceRunItem)
class InvoiceRunItemAdmin(ReadOnlyAdmin):
    list_display = ["run", "organization", "status", "attempts", "last_error", "invoice", "updated_at"]
    list_filter = ["status", "run"]
    search_fields = ["organization__name"]
