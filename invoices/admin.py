"""The billing console: invoices (read-only once issued), credit notes, tax rates,
coupons and the monthly runs. Money-moving actions need their permission and a reason,
and go through the services (audited)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from accounts.admin_base import AuditedModelAdmin, ReadOnlyAdmin
from accounts.console import money_for_people
from core.errors import DomainError
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
from invoices.templatetags.invoice_tags import line_figures


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
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

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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
    amount = forms.CharField(required=False, help_text="Credit notes only: net amount; empty credits all that is left.")


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "period_start", "status", "is_statement", "total", "still_due",
                    "amount_paid", "currency", "issued_at", "due_at"]
    list_filter = ["status", PeriodFilter, "is_statement", "currency", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["number", "organization__name", "organization__legal_name"]
    list_select_related = ["organization"]
    date_hierarchy = "period_start"
    inlines = [InvoiceLineInline, PaymentInline, PaymentReversalInline]
    actions = ["finalize", "void", "resend", "credit_note"]
    readonly_fields = [f.name for f in Invoice._meta.fields]

    def has_add_permission(self, request):
        return False  # invoices are made by the engines, never by hand

    def get_queryset(self, request):
        return selectors.with_still_due(super().get_queryset(request))

    @admin.display(description="amount due", ordering="still_due")
    def still_due(self, obj: Invoice) -> str:
        # What is still due after payments and credit notes: 0 on a paid invoice (the
        # amount due at issue stays on the invoice itself).
        return money_for_people(obj.still_due)

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
    fields = ["description", "amount", "tax_rate", "tax_amount"]
    readonly_fields = fields


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "invoice", "organization", "total", "currency", "issued_at", "issued_by"]
    search_fields = ["number", "invoice__number", "organization__name"]
    list_select_related = ["invoice", "organization", "issued_by"]
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
