"""The console: the chart of accounts and the movement mapping, edited by staff (every
change audited, an account with lines never deleted); journal entries and built days
read-only, with the exports linked from the entries' list."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from accounts.admin_base import AuditedModelAdmin, ReadOnlyAdmin, ReadOnlyInline
from finance.models import Account, JournalDay, JournalEntry, JournalLine, MovementAccount
from finance.services import accounts_add_group_revenue


@admin.register(Account)
class AccountAdmin(AuditedModelAdmin):
    list_display = ("number", "name", "type", "role", "provider", "product_group", "tax_country", "tax_rate")
    list_filter = ("type", "role")
    search_fields = ("number", "name")
    ordering = ("number",)
    readonly_fields = ("created_at",)
    actions = ["add_group_revenue"]

    @admin.action(description="Add a revenue account for each product group without one", permissions=["add"])
    def add_group_revenue(self, request, queryset):
        created = accounts_add_group_revenue(actor=request.user)
        self.message_user(request, f"{len(created)} revenue account(s) added: "
                          + (", ".join(str(a) for a in created) or "every product group has one"))

    def has_delete_permission(self, request, obj=None):
        # An account that carries lines is history: rename it, never delete it.
        if obj is not None and JournalLine.objects.filter(account=obj).exists():
            return False
        return super().has_delete_permission(request, obj)


@admin.register(MovementAccount)
class MovementAccountAdmin(AuditedModelAdmin):
    list_display = ("movement", "account")
    autocomplete_fields = ("account",)


class JournalLineInline(ReadOnlyInline):
    model = JournalLine
    fields = ("account", "amount", "organization")
    readonly_fields = fields


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("date", "movement", "document", "text", "currency", "organization")
    list_filter = ("movement", "currency", "date")
    search_fields = ("document", "source", "text")
    date_hierarchy = "date"
    list_select_related = ("organization",)
    readonly_fields = ("date", "currency", "movement", "source", "organization", "document", "text", "payment_id",
                       "refund_id", "created_at")
    inlines = [JournalLineInline]

    def changelist_view(self, request, extra_context=None):
        # The exports link to the last closed month, the one an accountant asks for.
        first_of_this_month = timezone.now().date().replace(day=1)
        last_month_end = first_of_this_month - timedelta(days=1)
        extra_context = {**(extra_context or {}), "export_from": last_month_end.replace(day=1),
                         "export_to": last_month_end}
        return super().changelist_view(request, extra_context)


@admin.register(JournalDay)
class JournalDayAdmin(ReadOnlyAdmin):
    list_display = ("date", "entries", "built_at")
