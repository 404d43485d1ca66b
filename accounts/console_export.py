"""The console's "Export selected to CSV": one site-wide admin action, so every list
(with its search and filters, or "select all") downloads as the columns staff see.

Export only: nothing here reads a file or writes a row but the audit row. The action
needs the model's view permission (a staff member who may not see a list cannot export
it), and each export is audited like any other staff action, with the rows and columns.

Why not django-import-export (4.4.3) or tablib: either would add a dependency and, for
import-export, an import surface we would have to switch off on every admin, while the
only need is a read-only CSV of what the list already shows. This writes through
core.csv_export, the one CSV writer: cells a spreadsheet would run as formulas are
neutralised, amounts are fixed point at the stored 12 places (never `0E-12`), times are
ISO 8601 in UTC."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.utils import label_for_field, lookup_field
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils.html import strip_tags
from django.utils.text import capfirst

from accounts.audit import audit_record
from core.csv_export import csv_download, date_cell, datetime_cell, exact_cell

# Rows read per query while streaming (one select_related query each).
EXPORT_CHUNK = 2000


def _columns(modeladmin, request) -> list[str]:
    return [name for name in modeladmin.get_list_display(request) if name != "action_checkbox"]


def _cell(obj, name: str, modeladmin) -> object:
    try:
        field, _attr, value = lookup_field(name, obj, modeladmin)
    except (AttributeError, ObjectDoesNotExist):
        return ""
    if field is not None and getattr(field, "flatchoices", None):
        value = dict(field.flatchoices).get(value, value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return exact_cell(value)
    if isinstance(value, datetime):
        return datetime_cell(value)
    if isinstance(value, date):
        return date_cell(value)
    if isinstance(value, int):
        return value
    return strip_tags(str(value))


@admin.action(description="Export selected to CSV", permissions=["view"])
def export_as_csv(modeladmin, request, queryset):
    model = modeladmin.model
    names = _columns(modeladmin, request)
    header = [capfirst(strip_tags(str(label_for_field(name, model, modeladmin)))) for name in names]
    with transaction.atomic():
        audit_record(f"{model._meta.model_name}.exported_in_console", actor=request.user,
                     changes={"rows": queryset.count(), "columns": header})
    rows = ([_cell(obj, name, modeladmin) for name in names] for obj in queryset.iterator(chunk_size=EXPORT_CHUNK))
    return csv_download(f"{model._meta.app_label}-{model._meta.model_name}.csv", header, rows)
