"""Start-up checks for usage's settings: without a month-to-date source the usage pages
and the dashboard card would fail on the first request instead of at start-up."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string


@register()
def check_month_to_date_source(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    path = getattr(settings, "MONTH_TO_DATE", "")
    hint = 'The dotted path of the month-to-date function, e.g. "invoices.month_to_date.month_to_date".'
    if not path:
        return [Error("MONTH_TO_DATE is not set.", hint=hint, id="usage.E001")]
    try:
        import_string(path)
    except ImportError as exc:
        return [Error(f"MONTH_TO_DATE = {path!r} cannot be imported: {exc}", hint=hint, id="usage.E002")]
    return []
