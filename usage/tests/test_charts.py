"""The stacked bar charts people read (issue 16, defect 9: small series were hard to
tell apart; the phone showed 5 px axis labels)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from django.conf import settings

from usage import charts
from usage.charts import Series, fold_series, stacked_bar_chart


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_series_colour_stands_out_from_the_white_plot_at_three_to_one():
    # WCAG 1.4.11 (non-text contrast). Main's palette had #35c3a5 at 2.2:1 and #c2b280 at 2.0:1.
    for colour in [*charts.PALETTE, charts.OTHER_COLOUR]:
        assert _contrast(colour, "#ffffff") >= 3, colour
    assert len(set(charts.PALETTE)) == len(charts.PALETTE)


def _chart(n: int) -> str:
    values = [[Decimal(10), Decimal("0.05"), Decimal(7)] for _ in range(n)]
    return str(stacked_bar_chart(title="Test", ticks=["a", "b", "c"], tooltips=["A", "B", "C"],
                                 series=[Series(f"Product {i}", v) for i, v in enumerate(values)], currency="USD"))


def test_a_small_series_between_two_large_ones_is_its_own_parted_hatched_segment():
    html = _chart(3)
    segments = re.findall(r'<rect [^>]*class="bars-seg"[^>]*><title>([^<]+)</title>', html)
    assert "Product 1, A: $10.00" in segments  # a tooltip names the series, bar and amount
    fills = re.findall(r'<rect [^>]*fill="([^"]+)" class="bars-seg"', html)
    assert fills[:3] == [charts.PALETTE[0], "url(#hatch-" + fills[1].split("hatch-")[1], charts.PALETTE[2]]
    css = (Path(settings.BASE_DIR) / "static" / "css" / "usage.css").read_text()
    assert re.search(r"\.bars-seg \{ stroke: #fff; stroke-width: 1\.5; \}", css)  # the white gap between segments


def test_the_legend_is_in_the_stack_order_and_names_every_series():
    html = _chart(3)
    assert re.findall(r"</svg>(Product \d)</li>", html) == ["Product 0", "Product 1", "Product 2"]


def test_more_series_than_colours_fold_into_other_in_grey():
    series = [Series(f"r{i}", [Decimal(i + 1)]) for i in range(12)]
    folded = fold_series(series)
    assert [s.name for s in folded] == [f"r{i}" for i in range(7)] + ["Other (5)"]
    assert folded[-1].values == [Decimal(8 + 9 + 10 + 11 + 12)]
    html = str(stacked_bar_chart(title="T", ticks=["x"], tooltips=["X"], series=folded, currency="USD"))
    assert charts.OTHER_COLOUR in html


def test_axis_labels_are_html_text_so_they_keep_their_size_on_a_phone():
    html = _chart(2)
    assert "<text" not in html  # no SVG text scaled down with the drawing
    assert re.findall(r'<div class="bars-y" aria-hidden="true">(.*?)</div>', html)[0].count("<span") == 5
    assert 'preserveAspectRatio="none"' in html and 'role="img"' in html and "in the table below" in html
