"""The billing console for payments: payments and refunds (read-only; money moves only
through the actions below, each needing a permission and a reason, each audited), the
webhook event log, saved methods and dunning."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin_base import ReadOnlyAdmin
from core.errors import DomainError
from core.money import format_money
from payments import services
from payments.models import DunningCase, Payment, PaymentMethod, Receipt, Refund, WebhookEvent


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = ["created_at", "amount", "currency", "status", "reason", "requested_by", "provider_refund_id",
              "needs_attention"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class RefundForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=3, max_digits=20, required=False,
                                help_text="Leave empty to refund everything still refundable.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Recorded in the audit trail.")


class BankTransferForm(forms.Form):
    invoice = forms.IntegerField(help_text="Invoice id.")
    amount = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=3, max_digits=20)
    reference = forms.CharField(max_length=200, help_text="The transfer's reference on the bank statement.")
    received_at = forms.DateTimeField(required=False, help_text="When it arrived (UTC); default now.")
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "organization", "purpose", "invoice", "provider", "flow", "money",
                    "status_badge", "refunded"]
    list_filter = ["status", "provider", "purpose", "flow", "currency"]
    search_fields = ["id", "organization__name", "provider_payment_id", "provider_checkout_id", "reference"]
    date_hierarchy = "created_at"
    list_select_related = ["organization", "invoice"]
    inlines = [RefundInline]
    readonly_fields = [f.name for f in Payment._meta.fields]
    change_list_template = "admin/payments/payment/change_list.html"
    change_form_template = "admin/payments/payment/change_form.html"

    @admin.display(description="Amount", ordering="amount")
    def money(self, obj):
        return format_money(obj.amount, obj.currency)

    @admin.display(description="Refunded")
    def refunded(self, obj):
        return format_money(obj.amount_refunded, obj.currency) if obj.amount_refunded else "—"

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        colour = {"succeeded": "#1a7f4b", "failed": "#b42318", "refunded": "#5d6478"}.get(obj.status, "#a86400")
        return format_html('<b style="color:{}">{}</b>{}', colour, obj.get_status_display(),
                           " · disputed" if obj.disputed_at else "")

    def get_urls(self):
        return [
            path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view), name="payments_payment_refund"),
            path("bank-transfer/", self.admin_site.admin_view(self.bank_transfer_view),
                 name="payments_payment_bank_transfer"),
            *super().get_urls(),
        ]

    def refund_view(self, request, pk: int):
        if not request.user.has_perm("payments.refund_payment"):
            raise PermissionDenied
        payment = get_object_or_404(Payment, pk=pk)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.refund_request(payment=payment, amount=form.cleaned_data["amount"],
                                        reason=form.cleaned_data["reason"], actor=request.user)
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Refund of payment {payment.pk} requested.")
                return redirect(reverse("admin:payments_payment_change", args=[payment.pk]))
        return render(request, "admin/payments/action_form.html", {
            **self.admin_site.each_context(request), "title": f"Refund payment {payment.pk}", "form": form,
            "intro": f"{payment.organization}: {format_money(payment.amount, payment.currency)} via "
                     f"{payment.get_provider_display()}, {format_money(payment.refundable_amount, payment.currency)} "
                     f"still refundable.",
            "opts": self.model._meta,
        })

    def bank_transfer_view(self, request):
        if not request.user.has_perm("payments.record_manual_payment"):
            raise PermissionDenied
        from invoices.models import Invoice

        form = BankTransferForm(request.POST or None, initial={"invoice": request.GET.get("invoice")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            invoice = Invoice.objects.filter(pk=data["invoice"]).first()
            if invoice is None:
                form.add_error("invoice", "No such invoice.")
            else:
                try:
                    payment = services.payment_record_bank_transfer(
                        invoice=invoice, amount=data["amount"], reference=data["reference"], actor=request.user,
                        reason=data["reason"], received_at=data["received_at"])
                except (DomainError, InvalidOperation) as exc:
                    form.add_error(getattr(exc, "field", None) if getattr(exc, "field", None) in form.fields else None,
                                   getattr(exc, "message", str(exc)))
                else:
                    messages.success(request, f"Bank transfer recorded as payment {payment.pk}.")
                    return redirect(reverse("admin:payments_payment_change", args=[payment.pk]))
        return render(request, "admin/payments/action_form.html", {
            **self.admin_site.each_context(request), "title": "Record a bank transfer", "form": form,
            "intro": "Money received by bank transfer against an invoice. It is recorded on the invoice at once.",
            "opts": self.model._meta,
        })


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs a person"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Needs a person")]

    def queryset(self, request, queryset):
        return queryset.exclude(needs_attention="") if self.value() == "yes" else queryset


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    """Receipts are issued with each payment received and never edited."""

    list_display = ["receipt_number", "organization", "purpose", "amount", "currency", "paid_at", "method", "invoice_number",
                    "emailed_at"]
    list_filter = ["purpose", "currency"]
    search_fields = ["receipt_number", "organization__name", "invoice_number"]
    list_select_related = ["organization"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "organization", "payment", "money", "status", "reason", "requested_by",
                    "needs_attention"]
    list_filter = [NeedsAttentionFilter, "status", "currency"]
    search_fields = ["payment__id", "organization__name", "provider_refund_id", "reason"]
    list_select_related = ["organization", "requested_by"]

    @admin.display(description="Amount", ordering="amount")
    def money(self, obj):
        return format_money(obj.amount, obj.currency)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "provider", "event_type", "event_id", "status", "deliveries", "attempts",
                    "processed_at"]
    list_filter = ["provider", "status", "event_type"]
    search_fields = ["event_id", "event_type"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ["organization", "provider", "brand", "last4", "exp_month", "exp_year", "is_default",
                    "created_at", "detached_at"]
    list_filter = ["provider", "is_default"]
    search_fields = ["organization__name", "provider_method_id"]


@admin.register(DunningCase)
class DunningCaseAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "organization", "status", "retries_done", "first_failed_at", "next_retry_at",
                    "last_failure", "final_action"]
    list_filter = ["status", "final_action"]
    search_fields = ["organization__name", "invoice__number"]
    list_select_related = ["invoice", "organization"]
