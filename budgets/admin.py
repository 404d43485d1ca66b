"""Console: budgets (create, edit, delete through the services, so re-arming and the hard
cap behave as in the portal and the API, and every change is audited) and their alerts."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from accounts.admin_base import ReadOnlyAdmin
from budgets import services
from budgets.models import Budget, BudgetAlert
from core.errors import DomainError

FIELDS = ["organization", "project", "name", "amount", "actual_thresholds", "forecast_thresholds", "recipient_roles",
          "recipient_emails", "cap_amount"]


class BudgetAdminForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = FIELDS
        help_texts = {"project": "Optional: a project of the organisation makes this a project budget (its "
                                 "spend, its resources). Set at creation only."}

    def clean(self):
        data = super().clean()
        org = data.get("organization") or getattr(self.instance, "organization", None)
        if org is not None:
            try:
                services._clean({k: data[k] for k in services.EDITABLE if k in data}, org.currency)
                if self.instance.pk is None:
                    services.project_of(org, data.get("project"))
            except DomainError as exc:
                raise ValidationError({exc.field: exc.message} if exc.field in self.fields else exc.message) \
                    from None
        return data


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    form = BudgetAdminForm
    list_display = ["id", "organization", "covers", "name", "amount", "currency", "actual", "forecast", "cap_amount",
                    "capped_at", "evaluated_at"]
    list_filter = ["scope", ("capped_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "organization__name", "project__slug", "project__name"]
    raw_id_fields = ["organization", "project"]
    readonly_fields = ["scope", "currency", "actual", "forecast", "as_of", "evaluated_at", "armed_month",
                       "alerts_sent", "capped_at", "capped_month", "capped_resources", "created_at", "updated_at"]
    list_select_related = ["organization", "project"]
    actions: list = []

    @admin.display(description="Scope")
    def covers(self, obj):
        return obj.scope_label

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization", "project"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in services.EDITABLE if k in form.cleaned_data}
        if change:
            services.budget_update(budget=Budget.objects.get(pk=obj.pk), actor=request.user, **data)
        else:
            created = services.budget_create(organization=form.cleaned_data["organization"], actor=request.user,
                                             project=form.cleaned_data.get("project"), **data)
            obj.pk = created.pk
        self.message_user(request, "Saved; the next evaluation (every five minutes) updates the figures.",
                          messages.INFO)

    def delete_model(self, request, obj):
        services.budget_delete(budget=obj, actor=request.user)


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization", "budget", "project", "month", "kind", "threshold", "spend", "amount", "created_at"]
    list_filter = ["kind", "month"]
    search_fields = ["organization__name", "budget__name"]
    list_select_related = ["organization", "budget__project"]

    @admin.display(description="Project")
    def project(self, obj):
        return obj.budget.project or "\u2014"
