"""The project's filter backend: django-filter, plus datetimes normalised to UTC.

A query such as `?created_at__gte=0302-07-27T18:31:58+16:32` parses (Python accepts any
offset under 24 h) but PostgreSQL refuses offsets beyond ±15:59 with a DataError, a
500. Converting every aware datetime to UTC before the query is built removes the
offset, and a value that cannot be converted is a 400 on that parameter.

Filters that name another row (`?invoice=`, `?payment=`) choose among the caller's rows
only: on a view scoped to an organisation (it has `caller`, see
accounts.api.permissions.OrganizationScopedMixin), the choices of every model-choice
filter whose model belongs to an organisation are cut by `caller.scope_queryset`, so
another organisation's id is the same 400 as an id of no row, not a 200 with no rows."""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError


class FilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        caller = getattr(view, "caller", None)
        if filterset is None or caller is None:
            return filterset
        for field in filterset.form.fields.values():
            if isinstance(field, forms.ModelChoiceField) and _has_organization(field.queryset):
                field.queryset = caller.scope_queryset(field.queryset, "organization")
        return filterset

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid() and self.raise_exception:
            raise utils.translate_validation(filterset.errors)
        cleaned = filterset.form.cleaned_data
        errors = {}
        for name, value in cleaned.items():
            if isinstance(value, datetime) and value.tzinfo is not None:
                try:
                    cleaned[name] = value.astimezone(UTC)
                except (OverflowError, ValueError):
                    errors[name] = ["This date and time is out of range."]
        if errors:
            raise ValidationError(errors)
        return filterset.qs


def _has_organization(queryset) -> bool:
    return any(f.name == "organization" for f in queryset.model._meta.concrete_fields)
