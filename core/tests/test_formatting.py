"""core.formatting and its template filters: money as money, rates in full, one date/time
format that names its zone, in the reader's zone or UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from core.formatting import (
    document_time,
    format_date,
    format_datetime,
    format_month,
    sentence,
    time_zone_choices,
    validate_time_zone,
)

AT = datetime(2026, 12, 3, 14, 5, 59, tzinfo=UTC)


def render(text: str, **context) -> str:
    return Template(text).render(Context(context))


def test_a_time_is_written_iso_like_with_its_zone_named():
    assert format_datetime(AT) == "2026-12-03 14:05 UTC"


def test_a_time_is_shown_in_the_active_zone_and_says_which():
    with timezone.override(ZoneInfo("Europe/Amsterdam")):
        assert format_datetime(AT) == "2026-12-03 15:05 CET"
    with timezone.override(ZoneInfo("America/New_York")):
        assert format_datetime(datetime(2026, 7, 1, 3, 0, tzinfo=UTC)) == "2026-06-30 23:00 EDT"


def test_a_zone_without_an_abbreviation_is_named_by_its_offset_from_utc():
    with timezone.override(ZoneInfo("Asia/Dubai")):
        assert format_datetime(AT) == "2026-12-03 18:05 UTC+04"


def test_a_date_is_the_date_in_the_readers_zone():
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert format_date(late) == "2026-12-31"
    with timezone.override(ZoneInfo("Asia/Tokyo")):
        assert format_date(late) == "2027-01-01"
    assert format_date(date(2026, 2, 28)) == "2026-02-28"


def test_a_billing_month_is_the_utc_calendar_month_whatever_the_reader():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with timezone.override(ZoneInfo("America/Los_Angeles")):  # 30 Nov 16:00 there
        assert format_month(start) == "December 2026"


def test_documents_render_in_utc_even_inside_a_readers_zone():
    with timezone.override(ZoneInfo("Asia/Kolkata")), document_time():
        assert format_datetime(AT) == "2026-12-03 14:05 UTC"


def test_missing_values_read_as_a_dash():
    assert format_datetime(None) == format_date(None) == "—"
    assert render("{{ x|money:'USD' }}|{{ x|when }}|{{ x|rate:'USD' }}", x=None) == "—|—|—"


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    (Decimal("3089.645"), "USD", "$3,089.65"),
    (Decimal("-99996110.72"), "USD", "-$99,996,110.72"),
    (Decimal("20000"), "EUR", "€20,000.00"),
    (Decimal("1234.5"), "JPY", "¥1,235"),
    (Decimal("0E-12"), "USD", "$0.00"),
])
def test_the_money_filter_writes_the_currencys_minor_unit_with_its_symbol(amount, currency, shown):
    assert render("{{ a|money:c }}", a=amount, c=currency) == shown


def test_the_rate_filter_keeps_every_place_a_rate_has():
    assert render("{{ a|rate:'USD' }}", a=Decimal("0.034333333333")) == "$0.034333333333"


def test_the_when_filter_has_three_styles():
    assert render("{{ t|when }}·{{ t|when:'date' }}·{{ t|when:'month' }}", t=AT) == (
        "2026-12-03 14:05 UTC·2026-12-03·December 2026")


def test_the_input_amount_filter_is_a_plain_number_for_a_form_field():
    assert render("{{ a|input_amount:'USD' }}", a=Decimal("1234.500000000000")) == "1234.50"


def test_a_message_ending_in_a_full_stop_gets_no_second_one():
    assert sentence("The payment failed: The sandbox card declined.") == "The payment failed: The sandbox card declined."
    assert sentence("The payment failed: declined") == "The payment failed: declined."


def test_time_zones_are_the_iana_list_with_utc_first():
    names = [name for name, _ in time_zone_choices()]
    assert names[0] == "UTC" and "Europe/Berlin" in names and "America/Argentina/Buenos_Aires" in names
    validate_time_zone("Pacific/Auckland")
    with pytest.raises(Exception, match="not a time zone"):
        validate_time_zone("Mars/Olympus_Mons")
