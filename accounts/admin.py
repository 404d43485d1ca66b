from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.utils import timezone
from django.utils.html import format_html
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services, two_factor
from accounts.admin_base import AuditedModelAdmin, ReadOnlyAdmin
from accounts.audit import audit_record
from accounts.models import ApiKey, AuditLog, Invitation, Membership, Organization, User
from accounts.scopes import Role
from accounts.staff import STAFF_ACCESS_FIELDS, may_manage_user


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    """Staff access (is_staff, groups, superuser) is changed here, by superusers only, and
    audited like the rest. Anyone else who may change users changes only people with no
    more rights than their own, and never their access fields (accounts.staff)."""

    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "last_login", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})]
    readonly_fields = ["last_login", "date_joined"]
    actions = ["reset_two_factor"]

    def has_reset_two_factor_permission(self, request):
        return request.user.is_superuser

    @admin.action(description="Reset two-factor sign-in (they enrol again)", permissions=["reset_two_factor"])
    def reset_two_factor(self, request, queryset):
        for user in queryset:  # each through the service: one audit row per person
            two_factor.two_factor_reset(user=user, actor=request.user)
        messages.success(request, f"Reset two-factor sign-in of {queryset.count()} person(s); "
                                  "those who need it enrol at their next sign-in.")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += [f for f in STAFF_ACCESS_FIELDS if f not in fields]
        return fields

    def has_change_permission(self, request, obj=None):
        # Also guards Django's password-change page, which asks this for the user it changes.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_manage_user(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_manage_user(request.user, obj))

    def delete_queryset(self, request, queryset):
        # "Delete selected" asks has_delete_permission per user already; this is the backstop.
        if not all(may_manage_user(request.user, user) for user in queryset):
            raise PermissionDenied("Only superusers manage staff accounts.")
        super().delete_queryset(request, queryset)

    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():  # the new password and its audit row commit together
            return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        # Django's own password-change page saves through its form, not save_model; its
        # log_change call is where we learn of it (the audit row never holds the hash).
        super().log_change(request, obj, message)
        if request.resolver_match and request.resolver_match.url_name == "auth_user_password_change":
            audit_record("user.password_set_in_console", actor=request.user, obj=obj)


admin.site.unregister(Group)
# TOTP devices hold their secrets in the clear: the console never shows them. A superuser
# resets a person's two-factor from the user list instead.
admin.site.unregister(TOTPDevice)


@admin.register(Group)
class GroupAdmin(AuditedModelAdmin, DjangoGroupAdmin):
    """Superusers only, whatever permissions anyone else holds: a group is a bundle of rights."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_add_permission = has_module_permission

    def has_change_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    has_delete_permission = has_change_permission


class KeepAnOwnerFormSet(BaseInlineFormSet):
    """The console may not leave an organisation with members but no owner.

    The check runs on the database's state under the organisation's member lock (the admin
    wraps the whole change view in one transaction), so a concurrent change through the
    services or another console tab cannot slip between the check and the save."""

    def clean(self):
        super().clean()
        forms_ = [f for f in self.forms if f.cleaned_data]
        if self.instance.pk is None:
            kept = [f for f in forms_ if not f.cleaned_data.get("DELETE")]
            if kept and not any(f.cleaned_data.get("role") == Role.OWNER for f in kept):
                raise ValidationError("An organisation needs at least one owner.")
            return
        owners = services.organization_owner_ids_locked(self.instance.pk)
        members = set(Membership.objects.filter(organization_id=self.instance.pk).values_list("pk", flat=True))
        new_owner = False
        for f in forms_:
            pk = f.instance.pk
            gone = f.cleaned_data.get("DELETE")
            if pk is not None and (gone or f.cleaned_data.get("role") != Role.OWNER):
                owners.discard(pk)
            if pk is not None and gone:
                members.discard(pk)
            if pk is None and not gone:
                members.add(f"new-{id(f)}")
                new_owner = new_owner or f.cleaned_data.get("role") == Role.OWNER
        if members and not owners and not new_owner:
            raise ValidationError("An organisation needs at least one owner.")


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = KeepAnOwnerFormSet
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ["name", "prefix", "scopes", "last_used_at", "revoked_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Organization)
class OrganizationAdmin(AuditedModelAdmin):
    list_display = ["name", "billing_mode", "currency", "country", "members", "is_active", "created_at"]
    list_filter = ["billing_mode", "currency", "country", "is_active", "tax_exempt"]
    search_fields = ["name", "legal_name", "slug", "billing_email", "vat_id"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, ApiKeyInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active"]}),
        ("Billing profile", {"fields": ["legal_name", "billing_email", "address_line1", "address_line2", "city",
                                        "postal_code", "region", "country", "vat_id"]}),
        ("Terms", {"fields": ["currency", "billing_mode", "credit_limit", "payment_terms_days", "tax_exempt"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(ordering="member_count")
    def members(self, obj):
        return obj.member_count


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "organization", "role"]

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        if instance.pk and cleaned.get("role") != Role.OWNER:
            # Under the organisation's member lock, held until the change view commits.
            owners = services.organization_owner_ids_locked(instance.organization_id)
            if owners == {instance.pk}:
                raise ValidationError("An organisation needs at least one owner: make someone else owner first.")
        return cleaned


@admin.register(Membership)
class MembershipAdmin(AuditedModelAdmin):
    form = MembershipForm
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__email", "user__full_name", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]

    def get_readonly_fields(self, request, obj=None):
        # Moving a membership to another person or organisation would dodge the owner rule
        # of the one it leaves: remove it and add a new one instead.
        return ["user", "organization"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.role == Role.OWNER:
            others = Membership.objects.filter(organization_id=obj.organization_id, role=Role.OWNER)
            if not others.exclude(pk=obj.pk).exists():
                return False  # the last owner stays
        return super().has_delete_permission(request, obj)

    def _refuse_removing_last_owners(self, memberships) -> None:
        by_org: dict[int, set[int]] = {}
        for m in memberships:
            by_org.setdefault(m.organization_id, set()).add(m.pk)
        for org_id in sorted(by_org):  # one lock order, so two bulk deletes cannot deadlock
            owners = services.organization_owner_ids_locked(org_id)
            if owners and owners <= by_org[org_id]:
                raise PermissionDenied("An organisation needs at least one owner: make someone else owner first.")

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._refuse_removing_last_owners([obj])
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            self._refuse_removing_last_owners(list(queryset))
            super().delete_queryset(request, queryset)


class InvitationStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("expired", "Expired"), ("accepted", "Accepted"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        open_ = {"accepted_at__isnull": True, "revoked_at__isnull": True}
        return {
            "pending": lambda: queryset.filter(**open_, expires_at__gt=now),
            "expired": lambda: queryset.filter(**open_, expires_at__lte=now),
            "accepted": lambda: queryset.filter(accepted_at__isnull=False),
            "revoked": lambda: queryset.filter(revoked_at__isnull=False),
        }.get(self.value(), lambda: queryset)()


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "invited_by", "created_at", "expires_at"]
    list_filter = [InvitationStatusFilter, "role"]
    list_select_related = ["organization", "invited_by"]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["organization", "email", "role", "invited_by", "created_at", "expires_at", "accepted_at",
                       "revoked_at"]
    exclude = ["token_hash"]

    def has_add_permission(self, request):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "organization", "key_prefix", "scope_list", "last_used_at", "status"]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter), ("last_used_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "organization__name"]
    list_select_related = ["organization"]
    readonly_fields = ["kind", "organization", "prefix", "scopes", "created_by", "created_at", "last_used_at",
                       "revoked_at"]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Keys are created in the portal, the API or with `create_platform_key`, which show the secret once.
        return False

    @admin.display(description="Key")
    def key_prefix(self, obj):
        return format_html("<code>{}</code>", obj.display_prefix)

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description="Status")
    def status(self, obj):
        return "revoked" if obj.revoked_at else "active"

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        active = list(queryset.filter(revoked_at__isnull=True))
        for key in active:  # each through the service: one audit row per key
            services.api_key_revoke(api_key=key, actor=request.user)
        messages.success(request, f"Revoked {len(active)} key(s). Requests made with them now get 401.")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "actor", "actor_api_key", "organization", "object_type", "object_id", "reason"]
    list_filter = ["action", "object_type"]
    search_fields = ["action", "actor__email", "organization__name", "object_id", "reason"]
    date_hierarchy = "created_at"
    list_select_related = ["actor", "actor_api_key", "organization"]
