"""Billing console: balances, the ledger (read-only, also inline on the organisation),
top-ups, promotional grants, events and the provisioning outbox. Staff move money only
through the "Adjust credit…" action, which needs `credits.adjust_credit` and a reason,
and goes through the services (so it is ledgered and audited)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_base import AuditedModelAdmin, ReadOnlyAdmin, ReadOnlyInline
from accounts.models import Organization
from core.errors import DomainError
from core.formatting import format_datetime
from credits import admin_adjustment, hibernation, services
from credits.models import (
    AdmissionPolicy,
    AutoTopUpSettings,
    Balance,
    CreditEvent,
    HibernationLadder,
    LadderPolicy,
    LedgerEntry,
    PromoGrant,
    ProvisioningRequest,
    RequestStatus,
    TopUp,
)

INLINE_ROWS = 25


class RecentFirstFormSet(BaseInlineFormSet):
    """Only the newest rows: an organisation's ledger grows by one row a minute."""

    def get_queryset(self):
        return super().get_queryset().order_by("-created_at", "-id")[:INLINE_ROWS]


class LedgerEntryInline(ReadOnlyInline):
    model = LedgerEntry
    formset = RecentFirstFormSet
    verbose_name_plural = f"Ledger (newest {INLINE_ROWS}; all in Credits › Ledger entries)"
    fields = ["created_at", "kind", "amount", "promo_amount", "balance_after", "reason", "reference", "who"]
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="By")
    def who(self, obj):
        return obj.actor_display


class BalanceInline(ReadOnlyInline):
    model = Balance
    fields = ["currency", "amount", "promo_amount", "burn_rate_per_hour", "hibernated_at", "warnings_sent"]
    readonly_fields = fields


class LadderInline(ReadOnlyInline):
    """The organisation's zero-balance ladders (credits.ladder), newest first."""

    model = HibernationLadder
    fk_name = "organization"
    verbose_name_plural = "Zero-balance ladder (hibernations for lack of credit)"
    fields = ["status", "step", "reason", "hibernated_at", "started_at", "notice_days", "notices_done",
              "next_notice", "deletion_due_at", "deletion_request", "ended_at"]
    readonly_fields = fields

    @admin.display(description="Step")
    def step(self, obj):
        from credits import ladder

        return ladder.step_label(obj, timezone.now())

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-started_at", "-id")

    @admin.display(description="Next notice")
    def next_notice(self, obj):
        from credits import ladder

        return format_datetime(ladder.next_notice_at(obj)) if obj.status == "active" else "—"


def _adjust(modeladmin, request, organizations, back_to_action: str):
    """Shared by the organisation and balance actions: the two steps in admin_adjustment."""
    return admin_adjustment.adjust(modeladmin, request, organizations, back_to_action)


def _has_adjust_permission(request) -> bool:
    return request.user.has_perm("credits.adjust_credit")


@admin.action(description="Adjust credit… (reason required)", permissions=["adjust"])
def adjust_organization_credit(modeladmin, request, queryset):
    return _adjust(modeladmin, request, list(queryset), "adjust_organization_credit")


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    list_display = ["organization", "currency", "amount", "promo_amount", "burn_rate_per_hour", "hibernated_at",
                    "updated_at"]
    list_filter = ["currency", ("hibernated_at", admin.EmptyFieldListFilter)]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization"]
    actions = ["adjust_credit", "resume"]

    def has_adjust_permission(self, request):
        return _has_adjust_permission(request)

    @admin.action(description="Adjust credit… (reason required)", permissions=["adjust"])
    def adjust_credit(self, request, queryset):
        return _adjust(self, request, [b.organization for b in queryset.select_related("organization")],
                       "adjust_credit")

    @admin.action(description="Resume hibernated resources", permissions=["adjust"])
    def resume(self, request, queryset):
        for balance in queryset.filter(hibernated_at__isnull=False):
            try:
                hibernation.resume(organization_id=balance.organization_id, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{balance.organization}: {exc.message}", messages.ERROR)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organization", "kind", "amount", "promo_amount", "balance_after", "reason",
                    "reference", "who"]
    list_filter = ["kind", "currency"]
    search_fields = ["organization__name", "reference", "reason"]
    date_hierarchy = "created_at"
    list_select_related = ["organization", "actor", "actor_api_key"]
    show_full_result_count = False

    @admin.display(description="By")
    def who(self, obj):
        return obj.actor_display


@admin.register(PromoGrant)
class PromoGrantAdmin(ReadOnlyAdmin):
    list_display = ["organization", "amount", "remaining", "currency", "expires_at", "expired_at", "granted_by",
                    "reason"]
    list_filter = [("expired_at", admin.EmptyFieldListFilter)]
    search_fields = ["organization__name", "reason"]


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization", "source", "status", "amount", "currency", "attempts", "next_attempt_at",
                    "last_error", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["organization__name", "provider_reference"]


@admin.register(AutoTopUpSettings)
class AutoTopUpSettingsAdmin(AuditedModelAdmin):
    list_display = ["organization", "enabled", "threshold", "amount", "monthly_cap", "updated_at", "rearmed_at"]
    list_filter = ["enabled"]
    fields = ["organization", "enabled", "threshold", "amount", "monthly_cap", "rearmed_at"]
    readonly_fields = ["rearmed_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Through the service, so the rules hold and a save that changes nothing re-arms
        nothing (it would start a second auto top-up in the same crossing)."""
        try:
            services.auto_topup_configure(organization=obj.organization, enabled=obj.enabled, threshold=obj.threshold,
                                          amount=obj.amount, monthly_cap=obj.monthly_cap, actor=request.user)
        except DomainError as exc:
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)


@admin.register(AdmissionPolicy)
class AdmissionPolicyAdmin(AuditedModelAdmin):
    """Runway admission per organisation (credits.admission); without a row the default
    CREDITS_ADMISSION_MIN_RUNWAY_HOURS applies."""

    list_display = ["organization", "min_runway_hours", "enforce", "note", "updated_at"]
    list_filter = ["enforce"]
    search_fields = ["organization__name", "organization__slug"]
    autocomplete_fields = ["organization"]
    fields = ["organization", "min_runway_hours", "enforce", "note"]

    def get_readonly_fields(self, request, obj=None):
        return ["organization"] if obj is not None else []


@admin.register(LadderPolicy)
class LadderPolicyAdmin(AuditedModelAdmin):
    """The zero-balance ladder per organisation (credits.ladder); without a row the defaults
    CREDITS_LADDER_NOTICE_DAYS and CREDITS_LADDER_DELETE_AFTER_DAYS apply. Read when a
    hibernation starts its ladder: a ladder under way keeps the dates it announced."""

    list_display = ["organization", "notice_days", "delete_after_days", "note", "updated_at"]
    search_fields = ["organization__name", "organization__slug"]
    autocomplete_fields = ["organization"]
    fields = ["organization", "notice_days", "delete_after_days", "note"]

    def get_readonly_fields(self, request, obj=None):
        return ["organization"] if obj is not None else []


@admin.register(HibernationLadder)
class HibernationLadderAdmin(ReadOnlyAdmin):
    list_display = ["organization", "status", "step", "reason", "hibernated_at", "notices_done", "deletion_due_at",
                    "deletion_request", "ended_at"]
    list_filter = ["status", "reason"]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization", "deletion_request"]

    @admin.display(description="Step")
    def step(self, obj):
        from credits import ladder

        return ladder.step_label(obj, timezone.now())


@admin.register(CreditEvent)
class CreditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organization", "kind", "message"]
    list_filter = ["kind"]
    search_fields = ["organization__name", "message"]
    date_hierarchy = "created_at"


@admin.register(ProvisioningRequest)
class ProvisioningRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization", "action", "status_badge", "attempts", "next_attempt_at", "last_error",
                    "created_at", "acknowledged_at"]
    list_filter = ["status", "action"]
    search_fields = ["organization__name", "last_error"]
    actions = ["retry_now"]

    @admin.display(description="Status")
    def status_badge(self, obj):
        failing = obj.status == RequestStatus.PENDING and obj.attempts > 0
        return format_html('<b style="color:{}">{}</b>', "#b42318" if failing else "inherit",
                           "failing, retrying" if failing else obj.get_status_display())

    def has_retry_permission(self, request):
        return _has_adjust_permission(request)

    @admin.action(description="Retry delivery now", permissions=["retry"])
    def retry_now(self, request, queryset):
        now = timezone.now()
        sent = sum(hibernation.deliver(request_id=r.pk, now=now) for r in queryset.filter(status="pending"))
        queryset.filter(status="pending").update(next_attempt_at=now)
        self.message_user(request, f"{sent} request(s) acknowledged.")


def extend_organization_admin() -> None:
    """At import (autodiscovery, after accounts): the ledger inline and the adjustment action on
    accounts' OrganizationAdmin, without editing accounts."""
    org_admin = admin.site._registry.get(Organization)
    if org_admin is None or LedgerEntryInline in org_admin.inlines:
        return
    org_admin.inlines = [*org_admin.inlines, BalanceInline, LadderInline, LedgerEntryInline]
    org_admin.actions = [*(org_admin.actions or []), adjust_organization_credit]
    org_admin.has_adjust_permission = _has_adjust_permission


# Admin autodiscovery imports app admin modules in INSTALLED_APPS order: accounts first.
extend_organization_admin()
