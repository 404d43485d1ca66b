"""Money and time are written one way (core/formatting.py): the `money`, `rate` and `when`
filters in templates, format_money / format_rate / format_datetime in Python. This test
reads every template and every application module and fails on any other way of writing
them, so a `|floatformat:2` amount, a '100.00 USD', a `|date:"j M Y"` or a time without
its zone cannot come back. Each pattern is checked against a planted example, so a broken
pattern cannot pass silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SKIP_DIRS = {".venv", "node_modules", "static", "staticfiles", ".git", "screenshots"}

# In templates: what each pattern catches, and the way to write it instead.
TEMPLATE_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "floatformat": (re.compile(r"\|\s*floatformat\b"), "money: |money:currency; a quantity: |quantity or |qty"),
    "date filter": (re.compile(r"\|\s*date\b"), "|when, |when:\"date\" or |when:\"month\""),
    "time filter": (re.compile(r"\|\s*time\b"), "|when"),
    "now tag": (re.compile(r"\{%\s*now\s"), "{% now_when %}"),
    "amount then currency": (re.compile(r"\}\}\s*\{\{\s*[\w.]*currency\s*\}\}"), "{{ amount|money:currency }}"),
    "stringformat number": (re.compile(r"\|\s*stringformat:\s*['\"][^'\"]*[feg]['\"]"), "|input_amount:currency"),
    "UTC written by hand": (re.compile(r"\}\}\s*UTC\b"), "|when names the zone itself"),
}

# In Python modules (tests, benchmarks, migrations and management commands aside: what
# they print is for developers).
PYTHON_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "fixed places then currency": (
        re.compile(r"\{[^{}]*:,?\.\d+f\}\s*\{[^{}]*currency[^{}]*\}"), "format_money(amount, currency)"),
    "amount then currency": (
        re.compile(r"\{[^{}:]*(?:amount|balance|total|remaining|limit|due|paid|price)[^{}:]*\}\s*\{[^{}:]*currency\}"),
        "format_money(amount, currency), or format_rate for a rate"),
    "day-month date": (re.compile(r":%-?d %[bB]|%[bB] %-?d\b|:%-?d %b %Y"), "format_date / format_datetime"),
}

# Places that may, each with its reason. (path, rule) -> why.
ALLOWED: dict[tuple[str, str], str] = {
    ("core/money.py", "amount then currency"): "a programming error's message, for developers",
    ("payments/services/lifecycle.py", "amount then currency"): "audit row data: exact stored values for staff",
    ("payments/gateways/currencies.py", "amount then currency"):
        "a provider refusing the exact amount it was sent: rounding it for display would hide why",
    ("usage/views.py", "day-month date"): "chart axis ticks: a day label ('3 Dec') under a bar, not a date",
    ("invoices/handlers/recurring.py", "day-month date"):
        "part of an invoice line's stored description; issued lines never change",
}


def _files(*suffixes: str):
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if path.suffix in suffixes and path.is_file() and not SKIP_DIRS & set(rel.parts):
            yield rel, path.read_text(encoding="utf-8")


def _templates():
    for rel, text in _files(".html", ".txt"):
        if "templates" in rel.parts:
            yield rel, text


def _modules():
    for rel, text in _files(".py"):
        parts = set(rel.parts)
        if parts & {"tests", "benchmarks", "migrations", "management"} or rel.name == "conftest.py":
            continue
        yield rel, text


def _offences(files, rules) -> list[str]:
    found = []
    for rel, text in files:
        for number, line in enumerate(text.splitlines(), 1):
            for name, (pattern, instead) in rules.items():
                if pattern.search(line) and (rel.as_posix(), name) not in ALLOWED:
                    found.append(f"{rel}:{number}: {name} ({instead}): {line.strip()[:120]}")
    return found


def test_there_are_templates_and_modules_to_read():
    assert len(list(_templates())) > 40
    assert len(list(_modules())) > 100


def test_no_template_writes_money_or_time_another_way():
    assert _offences(_templates(), TEMPLATE_RULES) == []


def test_no_message_in_python_writes_money_or_time_another_way():
    assert _offences(_modules(), PYTHON_RULES) == []


def test_every_allowance_is_still_needed():
    rules = {**TEMPLATE_RULES, **PYTHON_RULES}
    texts = dict(_files(".py", ".html", ".txt"))
    for (path, name) in ALLOWED:
        pattern = rules[name][0]
        assert any(pattern.search(line) for line in texts[Path(path)].splitlines()), (path, name)


@pytest.mark.parametrize(("rule", "line"), [
    ("floatformat", "{{ p.amount|floatformat:2|intcomma }}"),
    ("date filter", '{{ inv.issued_at|date:"j M Y" }}'),
    ("time filter", "{{ e.created_at|time }}"),
    ("now tag", '{% now "j M Y" %}'),
    ("amount then currency", "{{ p.amount }} {{ p.currency }}"),
    ("stringformat number", "{{ inv.open_amount|stringformat:'.2f' }}"),
    ("UTC written by hand", "{{ payment.created_at|when:'date' }} UTC"),
])
def test_each_template_rule_catches_what_it_names(rule, line):
    assert TEMPLATE_RULES[rule][0].search(line)


@pytest.mark.parametrize(("rule", "line"), [
    ("fixed places then currency", 'f"Your credit of {amount:.2f} {currency} lasts"'),
    ("amount then currency", 'f"Top-up of {t.amount} {t.currency} requested."'),
    ("amount then currency", 'f"Only {remaining} {inv.currency} remains to be paid."'),
    ("day-month date", 'f"We will try again on {case.next_retry_at:%d %B %Y}."'),
])
def test_each_python_rule_catches_what_it_names(rule, line):
    assert PYTHON_RULES[rule][0].search(line)


@pytest.mark.parametrize("line", [
    "{{ invoice.total|money:invoice.currency }}", "{{ payment.created_at|when }}", "{{ k.last_used_at|timesince }}",
    "{{ org.currency }}", 'f"{format_money(t.amount, t.currency)} requested"',
])
def test_the_one_way_passes(line):
    rules = {**TEMPLATE_RULES, **PYTHON_RULES}
    assert not [name for name, (pattern, _) in rules.items() if pattern.search(line)]
