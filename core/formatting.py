"""How people read money and time: one function each, used by templates (the `money`,
`rate` and `when` filters, core/templatetags/formats.py), emails, flash messages, notices
and the console. core/tests/test_formatting_everywhere.py fails on a template or message
that formats money or time any other way.

- Money: `format_money` (core.money), the currency's minor unit with its symbol: '$3,089.65',
  '€20,000.00', '¥1,235'. Rates (unit prices, burn rates, per-minute charges) keep every
  place they have through `format_rate`, and are labelled as rates where they appear.
- Time: 'YYYY-MM-DD HH:MM ZONE' ('2026-12-03 14:05 UTC', '2026-12-03 15:05 CET'), in the
  time zone active for the request (the reader's own, accounts.middleware) or UTC
  (documents, emails and tasks: `timezone.override(DOCUMENT_TIME_ZONE)`). A date alone is
  'YYYY-MM-DD'; a billing month is 'December 2026'.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

from django.utils import timezone

from core.money import format_money, format_rate

__all__ = ["DOCUMENT_TIME_ZONE", "format_date", "format_datetime", "format_money", "format_month", "format_rate",
           "sentence", "time_zone_choices", "zone_label"]

# Documents (PDFs, their emails) are in UTC whoever asks for them: a document reads the
# same for every reader, and says so.
DOCUMENT_TIME_ZONE = "UTC"
DATE_PATTERN = "%Y-%m-%d"
TIME_PATTERN = "%H:%M"
MISSING = "—"

Style = Literal["datetime", "date", "month"]


def zone_label(value: dt.datetime) -> str:
    """The zone's abbreviation as its clocks say it ('UTC', 'CET', 'EST'); zones without
    one (tzdata writes '+04') as 'UTC+04'."""
    name = value.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


def _local(value: dt.datetime) -> dt.datetime:
    if timezone.is_naive(value):
        # Naive datetimes do not exist in this project (USE_TZ); one that slips in is UTC.
        value = value.replace(tzinfo=dt.UTC)
    return timezone.localtime(value)


def format_datetime(value: dt.datetime | dt.date | None) -> str:
    """'2026-12-03 14:05 UTC' in the active time zone; a date alone as `format_date`."""
    if value is None or value == "":
        return MISSING
    if not isinstance(value, dt.datetime):
        return format_date(value)
    local = _local(value)
    return f"{local.strftime(DATE_PATTERN)} {local.strftime(TIME_PATTERN)} {zone_label(local)}"


def format_date(value: dt.datetime | dt.date | None) -> str:
    """'2026-12-03'; a datetime is first put in the active time zone."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, dt.datetime):
        value = _local(value)
    return value.strftime(DATE_PATTERN)


def format_month(value: dt.datetime | dt.date | None) -> str:
    """A billing month: 'December 2026' (months are calendar months in UTC, so a
    datetime's month is taken in UTC, not the reader's zone)."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value, dt.UTC) if timezone.is_aware(value) else value
    return value.strftime("%B %Y")


def format_when(value: dt.datetime | dt.date | None, style: Style = "datetime") -> str:
    if style == "date":
        return format_date(value)
    if style == "month":
        return format_month(value)
    if style == "datetime":
        return format_datetime(value)
    raise ValueError(f"unknown time style {style!r}: datetime, date or month")


def format_minutes(minutes: int | None) -> str:
    """A duration in minutes as people read it: '45 min', '2 h', '35 h 30 min'."""
    if minutes is None:
        return MISSING
    sign, minutes = ("−", -minutes) if minutes < 0 else ("", minutes)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{sign}{rest} min"
    return f"{sign}{hours:,} h" + (f" {rest} min" if rest else "")


def format_amount(amount: Decimal | None, currency: str) -> str:
    """`format_money` that reads a missing amount as '—'."""
    return MISSING if amount is None or amount == "" else format_money(Decimal(amount), currency)


def sentence(text: str) -> str:
    """`text` as one sentence ending in one full stop: provider and error messages often
    end in their own ('The sandbox card declined.'), and a message that adds one must
    not print two."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone the system's tz database knows, UTC first, then by name."""
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/",
                                                                                        "right/")))
    return [("UTC", "UTC"), *((z, z.replace("_", " ")) for z in zones)]


def is_time_zone(name: str) -> bool:
    return name == "UTC" or name in dict(time_zone_choices())


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name if is_time_zone(name) else DOCUMENT_TIME_ZONE)


def validate_time_zone(name: str) -> None:
    """Model validator: an IANA zone of `time_zone_choices`."""
    from django.core.exceptions import ValidationError

    if not is_time_zone(name):
        raise ValidationError(f"{name!r} is not a time zone: choose one from the list (e.g. Europe/Berlin).",
                              code="invalid_time_zone")


def document_time() -> timezone.override:
    """Context manager for rendering a document or email: its times are in
    DOCUMENT_TIME_ZONE whoever triggers it (a request may have the reader's zone active)."""
    return timezone.override(DOCUMENT_TIME_ZONE)
