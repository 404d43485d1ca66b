"""Shared admin pieces: every staff change through the console leaves an audit row,
in the same transaction as the change: forms, inlines, deletes and bulk deletes."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction

from accounts.audit import audit_record


def _organization_of(obj):
    from accounts.models import Organization

    if isinstance(obj, Organization):
        return obj
    return getattr(obj, "organization", None)


def _audit(request, obj, verb: str, changes: dict | None = None) -> None:
    audit_record(
        f"{obj._meta.model_name}.{verb}_in_console",
        actor=request.user, organization=_organization_of(obj), obj=obj, changes=changes or {},
    )


def _plain(value):
    if isinstance(value, str | int | bool | None):
        return value
    if hasattr(value, "__iter__"):  # querysets and lists of many-to-many choices
        return sorted(str(getattr(v, "pk", v)) for v in value)
    return str(getattr(value, "pk", value))


def _form_changes(form) -> dict[str, list]:
    """{field: [before, after]}; password hashes never enter the audit trail."""
    return {
        f: ["…", "…"] if "password" in f else [_plain(form.initial.get(f)), _plain(form.cleaned_data.get(f))]
        for f in form.changed_data
    }


class AuditedModelAdmin(admin.ModelAdmin):
    """Records create/change/delete in the audit trail, with the changed fields."""

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            changes = _form_changes(form) if change and form is not None else {}
            super().save_model(request, obj, form, change)
            _audit(request, obj, "changed" if change else "created", changes)

    def delete_model(self, request, obj):
        with transaction.atomic():
            _audit(request, obj, "deleted", {"repr": str(obj)})
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        # The "Delete selected" action: one audit row per object, then the delete.
        with transaction.atomic():
            for obj in queryset:
                _audit(request, obj, "deleted", {"repr": str(obj)})
            super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change):
        """Inline rows (e.g. members on an organisation) are audited like the parent."""
        with transaction.atomic():
            deleted = [f.instance for f in formset.deleted_forms if f.instance.pk is not None]
            for obj in deleted:
                _audit(request, obj, "deleted", {"repr": str(obj)})
            changed_forms = [f for f in formset.forms if f.instance.pk is not None and f.has_changed()
                             and f not in formset.deleted_forms]
            changes = {f.instance.pk: _form_changes(f) for f in changed_forms}
            super().save_formset(request, form, formset, change)
            for obj in formset.new_objects:
                _audit(request, obj, "created", {"repr": str(obj)})
            for obj, _fields in formset.changed_objects:
                _audit(request, obj, "changed", changes.get(obj.pk, {}))


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent, never added, changed or deleted there (ledger rows,
    journal lines, invoice lines, state intervals). A subclass names its `fields` and
    makes them `readonly_fields`."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """For append-only records (ledgers, audit trails, events): look, never touch."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
