"""Start-up checks for usage's settings: without a month-to-date source the usage pages
and the dashboard card would fail on the first request instead of at start-up; with a
retention longer than the dedup window, a stored event's id could be accepted again."""

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


@register()
def check_dedup_window_covers_retention(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Every stored event's id is inside the dedup window: an event is kept
    USAGE_EVENT_RETENTION_DAYS after its time, which is at most USAGE_MAX_EVENT_AGE before
    its receipt, and the window counts from receipt."""
    from usage.models.events import DEDUP_WINDOW_DAYS

    kept = settings.USAGE_EVENT_RETENTION_DAYS + settings.USAGE_MAX_EVENT_AGE.days + 1
    if kept > DEDUP_WINDOW_DAYS:
        return [Error(f"Events are kept up to {kept} days after their receipt, longer than the "
                      f"{DEDUP_WINDOW_DAYS}-day dedup window: a stored event's id could be accepted again.",
                      hint="Lower USAGE_EVENT_RETENTION_DAYS (or raise DEDUP_WINDOW_DAYS in usage.models.events).",
                      id="usage.E003")]
    return []
