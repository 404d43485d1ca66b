"""Shared admin pieces: every staff change through the console leaves an audit row."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction

from accounts.audit import audit_record


def _organization_of(obj):
    from accounts.models import Organization

    if isinstance(obj, Organization):
        return obj
    return getattr(obj, "organization", None)


class AuditedModelAdmin(admin.ModelAdmin):
    """Records create/change/delete in the audit trail, with the changed fields."""

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            changes = {}
            if change and form is not None:
                changes = {f: [str(form.initial.get(f)), str(form.cleaned_data.get(f))] for f in form.changed_data}
            super().save_model(request, obj, form, change)
            audit_record(
                f"{obj._meta.model_name}.{'changed' if change else 'created'}_in_console",
                actor=request.user, organization=_organization_of(obj), obj=obj, changes=changes,
            )

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_record(
                f"{obj._meta.model_name}.deleted_in_console",
                actor=request.user, organization=_organization_of(obj), obj=obj, changes={"repr": str(obj)},
            )
            super().delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only records (ledgers, audit trails, events): look, never touch."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
