"""Money: one precision, one rounding, minor units per currency, and no float anywhere near it."""

import ast
import decimal
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    DECIMAL_PRECISION,
    CurrencyError,
    decimal_places,
    format_money,
    format_rate,
    from_minor_units,
    minor_unit_exponent,
    parse_decimal,
    round_money,
    to_minor_units,
    total_of_lines,
    validate_currency,
)

CURRENCIES = ["USD", "EUR", "JPY", "BHD", "KWD", "GBP", "CHF"]
amounts = st.decimals(min_value=D("-1000000000"), max_value=D("1000000000"), places=12, allow_nan=False,
                      allow_infinity=False)


def test_minor_units_follow_iso_4217():
    assert [minor_unit_exponent(c) for c in ("JPY", "USD", "EUR", "BHD", "KWD")] == [0, 2, 2, 3, 3]


def test_rounding_is_half_up_to_the_minor_unit():
    assert round_money(D("2.345"), "USD") == D("2.35")
    assert round_money(D("2.344999999999"), "USD") == D("2.34")
    assert round_money(D("-2.345"), "USD") == D("-2.35")  # half away from zero: a refund mirrors a charge


def test_yen_rounds_to_whole_yen():
    assert round_money(D("1234.5"), "JPY") == D("1235")
    assert round_money(D("1234.4999"), "JPY") == D("1234")
    assert to_minor_units(D("1235"), "JPY") == 1235


def test_bahraini_dinar_rounds_to_three_places():
    assert round_money(D("1.2345"), "BHD") == D("1.235")
    assert round_money(D("1.2344"), "BHD") == D("1.234")
    assert to_minor_units(D("1.235"), "BHD") == 1235
    assert from_minor_units(1235, "BHD") == D("1.235")


def test_a_per_minute_rate_keeps_its_precision_until_the_invoice_line():
    minute = D("2.06") / 60
    month = minute * 44_640
    assert month == D("1532.64")  # no drift across a 31-day month of minutes
    assert round_money(minute, "USD") == D("0.03")


def test_the_project_precision_is_set_once_for_every_thread():
    assert decimal.getcontext().prec == DECIMAL_PRECISION
    assert decimal.DefaultContext.prec == DECIMAL_PRECISION


def test_money_functions_refuse_floats():
    for call in (lambda: round_money(0.1, "USD"), lambda: to_minor_units(1.0, "USD"),
                 lambda: total_of_lines([D("1"), 0.5], "USD"), lambda: parse_decimal(0.1),
                 lambda: from_minor_units(1.0, "USD")):
        with pytest.raises(TypeError):
            call()


def test_parse_decimal_takes_text_and_refuses_nonsense():
    assert parse_decimal(" 12.50 ") == D("12.50")
    with pytest.raises(ValueError):
        parse_decimal("12,50")
    with pytest.raises(ValueError):
        parse_decimal("NaN")


def test_unknown_currencies_are_refused():
    for code in ("XYZ", "usd", "US", ""):
        with pytest.raises(CurrencyError):
            validate_currency(code)


def test_to_minor_units_refuses_an_unrounded_amount():
    with pytest.raises(ValueError):
        to_minor_units(D("1.005"), "USD")


def test_formatting_for_people():
    assert format_money(D("1234.5"), "USD") == "$1,234.50"
    assert format_money(D("1234.5"), "JPY") == "¥1,235"
    assert format_money(D("1234.5"), "EUR", locale="de_DE") == "1.234,50\xa0€"
    assert format_money(D("1.2345"), "BHD", locale="en_US") == "BHD\xa01.235"


def test_rates_are_formatted_without_rounding_them_away():
    assert format_rate(D("0.029800000000"), "USD") == "$0.0298"
    assert format_rate(D("23.920000000000"), "USD") == "$23.92"
    assert format_rate(D("3"), "USD") == "$3.00"
    assert format_rate(D("0.8602"), "EUR", locale="de_DE") == "0,8602\xa0€"


@given(amounts, st.sampled_from(CURRENCIES))
def test_rounding_lands_on_the_minor_unit_within_half_of_one(amount, currency):
    rounded = round_money(amount, currency)
    quantum = D(1).scaleb(-minor_unit_exponent(currency))
    assert rounded.as_tuple().exponent == -minor_unit_exponent(currency)
    assert abs(rounded - amount) <= quantum / 2
    assert round_money(rounded, currency) == rounded


@given(st.lists(amounts, max_size=50), st.sampled_from(CURRENCIES))
def test_an_invoice_total_is_the_sum_of_its_rounded_lines(lines, currency):
    total = total_of_lines(lines, currency)
    assert total == sum((round_money(x, currency) for x in lines), D(0))
    quantum = D(1).scaleb(-minor_unit_exponent(currency))
    # It may differ from the rounded sum of raw lines, by at most half a unit per line.
    assert abs(total - round_money(sum(lines, D(0)), currency)) <= quantum / 2 * (len(lines) + 1)
    assert from_minor_units(to_minor_units(total, currency), currency) == total


# --- no float near money ------------------------------------------------------

# Every application module is scanned (tests, benchmarks, migrations and commands are
# not): a list of "money modules" by file name silently lost modules whenever one was
# renamed or split. The few that need floats for something other than money say so here.
NOT_MONEY = {
    "core/launcher.py": "seconds between polls of the demo's processes",
    "usage/charts.py": "the SVG chart's pixel geometry",
    "gnocchi_export/services.py": "Gnocchi stores float64: its `_float` is the one Decimal-to-float boundary",
    "core/metrics.py": "samples handed to Prometheus (float64) and histogram buckets in seconds",
}


def _is_timeout(call: ast.Call) -> bool:
    """float(settings.…_TIMEOUT): an HTTP timeout in seconds, as the providers' SDKs take it."""
    return (len(call.args) == 1 and isinstance(call.args[0], ast.Attribute)
            and call.args[0].attr.endswith("_TIMEOUT"))


def _project_modules():
    # Every installed app that lives in this repository: a fixed list missed new apps
    # (finance, gnocchi_export) until someone remembered to add them.
    from django.apps import apps

    root = Path(settings.BASE_DIR)
    ours = sorted({Path(a.path) for a in apps.get_app_configs() if Path(a.path).is_relative_to(root)
                   and "site-packages" not in Path(a.path).parts})
    assert {p.name for p in ours} >= {"core", "accounts", "pricing", "usage", "credits", "invoices", "payments",
                                      "finance"}
    for app_dir in ours:
        for path in app_dir.rglob("*.py"):
            parts = set(path.relative_to(root).parts)
            if parts & {"tests", "benchmarks", "migrations", "management"}:
                continue
            yield path


def _relative(path: Path) -> str:
    try:
        return path.relative_to(settings.BASE_DIR).as_posix()
    except ValueError:
        return path.name


def _float_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "FloatField":
            found.append(f"{path}:{node.lineno} FloatField")
        if _relative(path) not in NOT_MONEY:
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                found.append(f"{path}:{node.lineno} float literal {node.value!r}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
                    and not _is_timeout(node)):
                found.append(f"{path}:{node.lineno} float()")
    return found


def test_no_float_in_money_modules_and_no_float_fields_anywhere():
    modules = list(_project_modules())
    assert any(p.name == "money.py" for p in modules)
    offenders = [hit for path in modules for hit in _float_uses(path)]
    assert offenders == []


def test_the_float_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "services.py"
    bad.write_text("from django.db import models\nx = models.FloatField()\ny = float('1') * 0.5\n")
    assert len(_float_uses(bad)) == 3


def test_the_float_scan_reads_a_module_whatever_its_name_and_allows_only_timeouts(tmp_path):
    renamed = tmp_path / "quantity_pricing.py"  # a name the old list of money modules did not know
    renamed.write_text("rate = 0.1\nt = float(settings.PAYMENTS_PROVIDER_TIMEOUT)\n")
    assert [hit.split()[-1] for hit in _float_uses(renamed)] == ["0.1"]


@pytest.mark.parametrize(("text", "places"), [("1.50", 2), ("7", 0), ("1E+2", 0), ("0.000000000001", 12)])
def test_decimal_places_counts_the_digits_as_written(text, places):
    assert decimal_places(D(text)) == places


@pytest.mark.parametrize("text", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_decimal_places_of_a_non_finite_value_is_refused(text):
    with pytest.raises(ValueError):
        decimal_places(D(text))
