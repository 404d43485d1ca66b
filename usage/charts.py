"""A stacked bar chart as server-rendered SVG: no JavaScript, no CDN, prints well."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from core.money import format_money

PALETTE = ["#4f5bd5", "#35c3a5", "#f29e4c", "#e4572e", "#8f6ad8", "#2a9df4", "#c2b280", "#76b041"]
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28


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


def stacked_bars(days: list[date], series: dict[str, list[Decimal]], currency: str) -> SafeString:
    if not days:
        return mark_safe("")
    totals = [sum((s[i] for s in series.values()), Decimal(0)) for i in range(len(days))]
    top = _nice_ceiling(max(totals, default=Decimal(0)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(days)
    bar_w = max(slot * 0.7, 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="Daily cost by product" xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - float(value / top) * plot_h
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
                     f'{escape(format_money(value, currency))}</text>')
    colours = {code: PALETTE[n % len(PALETTE)] for n, code in enumerate(sorted(series))}
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar_w) / 2
        base = TOP + plot_h
        for code in sorted(series):
            amount = series[code][i]
            if amount <= 0:
                continue
            h = float(amount / top) * plot_h
            base -= h
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colours[code]}"><title>{escape(code)} {day:%d %b}: '
                         f'{escape(format_money(amount, currency))}</title></rect>')
        if len(days) <= 16 or i % max(len(days) // 10, 1) == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" class="axis" text-anchor="middle">'
                         f'{day:%d %b}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{colours[c]}"></i>{escape(c)}</span>' for c in sorted(series))
    return mark_safe("".join(parts) + f'<div class="legend">{legend}</div>')  # noqa: S308 - every value escaped
