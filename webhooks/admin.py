"""Console: every endpoint (platform-wide ones are made here, with no organisation), the
delivery log with its attempts, and the staff actions: rotate a secret, send a test
event, replay deliveries. Actions need the change permission on endpoints; every write
goes through webhooks.services, which audits it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from accounts.admin_base import ReadOnlyAdmin
from core.errors import DomainError
from webhooks import addresses, services
from webhooks.catalogue import EVENT_TYPES
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointAdminForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(choices=[(n, n) for n in EVENT_TYPES],
                                            widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "event_types", "status"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            addresses.check_url(url)
        except DomainError as exc:
            raise forms.ValidationError(exc.message)
        return url


def _can_manage(request) -> bool:
    return request.user.has_perm("webhooks.change_webhookendpoint")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointAdminForm
    list_display = ["id", "url", "owner", "status", "last_success_at", "last_failure_at", "created_at"]
    list_filter = ["status", ("organization", admin.EmptyFieldListFilter)]
    search_fields = ["url", "organization__name", "description"]
    readonly_fields = ["disabled_reason", "disabled_at", "last_success_at", "last_failure_at",
                       "previous_secret_expires_at", "created_by", "created_at"]
    raw_id_fields = ["organization"]
    actions = ["rotate_secret", "send_test", "replay_last_day"]

    @admin.display(description="Organisation")
    def owner(self, obj):
        return obj.organization or format_html("<b>{}</b>", "platform-wide")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.endpoint_update(endpoint=obj, url=data["url"], event_types=data["event_types"],
                                     description=data["description"], enabled=data["status"] == "enabled",
                                     actor=request.user)
        else:
            created = services.endpoint_create(organization=data["organization"], url=data["url"],
                                               event_types=data["event_types"], description=data["description"],
                                               actor=request.user)
            obj.pk = created.pk
            self.message_user(request, f"Signing secret (shown only now): {created.secret}", messages.WARNING)

    def delete_model(self, request, obj):
        services.endpoint_delete(endpoint=obj, actor=request.user)

    def has_manage_permission(self, request):
        return _can_manage(request)

    @admin.action(description="Rotate the signing secret (old one signs for 24 h more)", permissions=["manage"])
    def rotate_secret(self, request, queryset):
        for ep in queryset:
            ep = services.endpoint_rotate_secret(endpoint=ep, actor=request.user)
            self.message_user(request, f"{ep.url}: new secret (shown only now) {ep.secret}", messages.WARNING)

    @admin.action(description="Send a test event", permissions=["manage"])
    def send_test(self, request, queryset):
        for ep in queryset:
            try:
                d = services.endpoint_send_test(endpoint=ep, actor=request.user)
                d.refresh_from_db()
                self.message_user(request, f"{ep.url}: test event {d.message.public_id}, {d.status}.")
            except DomainError as exc:
                self.message_user(request, f"{ep.url}: {exc.message}", messages.ERROR)

    @admin.action(description="Replay the last 24 hours' deliveries", permissions=["manage"])
    def replay_last_day(self, request, queryset):
        from datetime import timedelta

        from django.utils import timezone

        for ep in queryset:
            try:
                n = services.deliveries_replay(endpoint=ep, since=timezone.now() - timedelta(days=1),
                                               actor=request.user)
                self.message_user(request, f"{ep.url}: {n} deliveries sent again.")
            except DomainError as exc:
                self.message_user(request, f"{ep.url}: {exc.message}", messages.ERROR)


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "trigger", "response_status", "error", "duration_ms", "request_headers",
              "response_body"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-id"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Filter to a range (endpoint, status, date), select, then "Replay selected"."""

    list_display = ["id", "event_type", "message_id", "endpoint", "status", "attempts", "last_status_code",
                    "next_attempt_at", "created_at"]
    list_filter = ["status", "message__event_type", "endpoint"]
    search_fields = ["message__public_id", "endpoint__url"]
    date_hierarchy = "created_at"
    list_select_related = ["message", "endpoint"]
    readonly_fields = ["message", "endpoint", "status", "trigger", "attempts", "next_attempt_at", "window_started_at",
                       "last_attempt_at", "last_status_code", "last_error", "succeeded_at", "created_at", "payload"]
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = ["replay"]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("webhooks.view_webhookdelivery") or _can_manage(request)

    @admin.display(description="Type")
    def event_type(self, obj):
        return obj.message.event_type

    @admin.display(description="webhook-id")
    def message_id(self, obj):
        return obj.message.public_id

    @admin.display(description="Payload")
    def payload(self, obj):
        return format_html("<pre>{}</pre>", obj.message.body())

    def has_replay_permission(self, request):
        return _can_manage(request)

    @admin.action(description="Replay selected (same webhook-ids)", permissions=["replay"])
    def replay(self, request, queryset):
        by_endpoint: dict[int, list[int]] = {}
        for pk, endpoint_id in queryset.values_list("id", "endpoint_id"):
            by_endpoint.setdefault(endpoint_id, []).append(pk)
        total = 0
        for ep in WebhookEndpoint.objects.filter(pk__in=by_endpoint):
            try:
                total += services.deliveries_replay(endpoint=ep, delivery_ids=by_endpoint[ep.pk], actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{ep.url}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{total} deliveries sent again.")
