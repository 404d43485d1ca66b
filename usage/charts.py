"""A stacked bar chart as server-rendered SVG: no JavaScript, no CDN, prints well."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from core.money import format_money

PALETTE = ["#4f5bd5", "#35c3a5", "#f29e4c", "#e4572e", "#8f6ad8", "#2a9df4", "#c2b280", "#76b041"]


@dataclass(frozen=True)
class Frame:
    """The chart's geometry in SVG units. The browser scales the drawing to its box, text
    included: the compact frame is drawn about as wide as a phone shows it, so its 12-unit
    labels stay near 12 px where the wide frame's would shrink to 5."""

    css_class: str
    width: int
    height: int
    left: int
    gridlines: int
    labels: int  # at most this many day labels along the bottom
    right: int = 12
    top: int = 12
    bottom: int = 28


WIDE = Frame("chart chart-wide", 760, 260, 64, 5, 10)
COMPACT = Frame("chart chart-compact", 330, 220, 58, 3, 5, right=24)


def _nice_ceiling(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above `value` (an axis maximum people read)."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        candidate = step.scaleb(exponent)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exponent)


def stacked_bars(days: list[date], series: dict[str, list[Decimal]], currency: str,
                 names: dict[str, str] | None = None) -> SafeString:
    """Bars of `series` ({key: [amount per day]}) stacked per day, drawn twice (a wide
    chart, and a compact one app.css shows instead on narrow screens), then a legend.
    `names` gives each key the words people read (a product's name for its code)."""
    if not days:
        return mark_safe("")
    names = names or {}
    colours = {key: PALETTE[n % len(PALETTE)] for n, key in enumerate(sorted(series))}
    totals = [sum((s[i] for s in series.values()), Decimal(0)) for i in range(len(days))]
    top = _nice_ceiling(max(totals, default=Decimal(0)))
    charts = "".join(_svg(frame, days, series, currency, top, colours, names) for frame in (WIDE, COMPACT))
    legend = "".join(f'<span><i style="background:{colours[c]}"></i>{escape(names.get(c, c))}</span>'
                     for c in sorted(series))
    return mark_safe(charts + f'<div class="legend">{legend}</div>')  # noqa: S308 - every value escaped


def _svg(frame: Frame, days: list[date], series: dict[str, list[Decimal]], currency: str, top: Decimal,
         colours: dict[str, str], names: dict[str, str]) -> str:
    plot_w, plot_h = frame.width - frame.left - frame.right, frame.height - frame.top - frame.bottom
    slot = plot_w / len(days)
    bar_w = max(slot * 0.7, 1)
    parts = [f'<svg class="{frame.css_class}" viewBox="0 0 {frame.width} {frame.height}" role="img" '
             f'aria-label="Daily cost by product" xmlns="http://www.w3.org/2000/svg">']
    for i in range(frame.gridlines):
        value = top * i / (frame.gridlines - 1)
        y = frame.top + plot_h - float(value / top) * plot_h
        parts.append(f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{frame.left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
                     f'{escape(format_money(value, currency))}</text>')
    every = max(-(-len(days) // frame.labels), 1)
    for i, day in enumerate(days):
        x = frame.left + i * slot + (slot - bar_w) / 2
        base = frame.top + plot_h
        for key in sorted(series):
            amount = series[key][i]
            if amount <= 0:
                continue
            h = float(amount / top) * plot_h
            base -= h
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colours[key]}"><title>{escape(names.get(key, key))} {day:%d %b}: '
                         f'{escape(format_money(amount, currency))}</title></rect>')
        if (len(days) - 1 - i) % every == 0:  # the newest day always has its label
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{frame.height - 8}" class="axis" text-anchor="middle">'
                         f'{day:%d %b}</text>')
    parts.append("</svg>")
    return "".join(parts)
