"""Stacked bar charts, rendered on the server: no JavaScript, no CDN, prints well.

The bars are an SVG stretched to the chart's box; the axis labels and legend are HTML
beside it, so their text stays 12 px at any width (an SVG scaled to a 390 px phone made
them 5 px). Styles: static/css/usage.css.

Telling series apart (issue 16, defect 9): the legend names products, not codes; the
colours all have at least 3:1 contrast against the white plot (WCAG 1.4.11), neighbours
in the order differ in hue, every second series is hatched, and stacked segments are
parted by a white gap, so a small segment between two large ones still shows. The order
is the caller's (stable: it does not change with the day) and the same bottom-to-top in
the stack as left-to-right in the legend. Every bar has a tooltip with its figures, and
the page's table says every figure in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from core.money import ZERO, format_money

# ≥ 3:1 against white each (4.8–6.3:1); adjacent entries far apart in hue.
PALETTE = ["#4f5bd5", "#c2410c", "#0f7b6c", "#a21caf", "#9a6700", "#0369a1", "#be123c", "#4d7c0f"]
OTHER_COLOUR = "#6b7280"
MAX_SERIES = len(PALETTE)  # more are folded into "Other"
VIEW_W, VIEW_H = 1000, 300  # the SVG's user units; the box stretches them
_ids = count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: list[Decimal]


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


def fold_series(series: list[Series], limit: int = MAX_SERIES) -> list[Series]:
    """The first `limit - 1` series and one "Other" holding the rest, when there are more
    than `limit` (a chart of fifty resources tells nothing; the table lists them all)."""
    if len(series) <= limit:
        return series
    rest = series[limit - 1:]
    other = [sum((s.values[i] for s in rest), ZERO) for i in range(len(series[0].values))]
    return [*series[:limit - 1], Series(f"Other ({len(rest)})", other)]


def _tint(colour: str) -> str:
    """The colour mixed halfway with white: the hatching's second stripe."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*((c + 255) // 2 for c in (r, g, b)))


def stacked_bar_chart(*, title: str, ticks: list[str], tooltips: list[str], series: list[Series], currency: str,
                      forecast: list[Decimal] | None = None) -> SafeString:
    """`ticks` label the bars (short), `tooltips` name them in full; each series has one
    value per bar. `forecast`, when given, is a further amount per bar drawn dashed on
    top of it: what the bar is expected to reach, not spend yet."""
    n = len(ticks)
    if not n:
        return mark_safe("")
    uid = next(_ids)
    extra = forecast or [ZERO] * n
    stacked = [sum((s.values[i] for s in series), ZERO) for i in range(n)]
    top = _nice_ceiling(max((t + e for t, e in zip(stacked, extra, strict=True)), default=ZERO))
    slot = VIEW_W / n
    bar_w = slot * (0.72 if n > 3 else 0.5)
    colours = [OTHER_COLOUR if s.name.startswith("Other (") else PALETTE[i % len(PALETTE)]
               for i, s in enumerate(series)]
    fills = []
    defs = []
    for i, colour in enumerate(colours):
        if i % 2:
            pid = f"hatch-{uid}-{i}"
            defs.append(f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse" '
                        f'patternTransform="rotate(45)"><rect width="8" height="8" fill="{colour}"/>'
                        f'<rect width="3" height="8" fill="{_tint(colour)}"/></pattern>')
            fills.append(f"url(#{pid})")
        else:
            fills.append(colour)
    total = sum(stacked, ZERO)
    label = (f"{title}: {format_money(total, currency)} over {n} bar{'s' if n != 1 else ''}"
             f"{', ' + ', '.join(s.name for s in series) if series else ''}. Every figure is in the table below.")
    svg = [f'<svg class="bars-svg" viewBox="0 0 {VIEW_W} {VIEW_H}" preserveAspectRatio="none" role="img" '
           f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg"><defs>{"".join(defs)}</defs>']
    for k in range(1, 5):
        y = VIEW_H - VIEW_H * k / 4
        svg.append(f'<line x1="0" x2="{VIEW_W}" y1="{y:.2f}" y2="{y:.2f}" class="bars-grid" '
                   'vector-effect="non-scaling-stroke"/>')
    for i in range(n):
        x = i * slot + (slot - bar_w) / 2
        base = float(VIEW_H)
        for s, fill in zip(series, fills, strict=True):
            amount = s.values[i]
            if amount <= 0:
                continue
            h = float(amount / top) * VIEW_H
            base -= h
            svg.append(f'<rect x="{x:.2f}" y="{base:.2f}" width="{bar_w:.2f}" height="{h:.2f}" fill="{fill}" '
                       f'class="bars-seg" vector-effect="non-scaling-stroke"><title>{escape(s.name)}, '
                       f'{escape(tooltips[i])}: {escape(format_money(amount, currency))}</title></rect>')
        if extra[i] > 0:
            h = float(extra[i] / top) * VIEW_H
            svg.append(f'<rect x="{x:.2f}" y="{base - h:.2f}" width="{bar_w:.2f}" height="{h:.2f}" '
                       'class="bars-forecast" vector-effect="non-scaling-stroke"><title>Forecast, '
                       f'{escape(tooltips[i])}: {escape(format_money(stacked[i] + extra[i], currency))} '
                       f'({escape(format_money(extra[i], currency))} still to come)</title></rect>')
    svg.append("</svg>")
    y_axis = "".join(f'<span style="bottom:{25 * k}%">{escape(format_money(top * k / 4, currency))}</span>'
                     for k in range(5))
    step = 1 if n <= 12 else -(-n // 10)
    x_axis = "".join(
        f'<span class="{"" if i % (step * 2) == 0 else "minor"}" style="left:{(i + 0.5) * 100 / n:.3f}%">'
        f'{escape(t)}</span>'
        for i, t in enumerate(ticks) if i % step == 0)
    legend = "".join(
        f'<li><svg class="swatch" viewBox="0 0 12 12" aria-hidden="true"><rect width="12" height="12" rx="2" '
        f'fill="{colours[i]}"/>{"" if not i % 2 else _swatch_hatch(colours[i])}</svg>{escape(s.name)}</li>'
        for i, s in enumerate(series))
    if forecast and any(e > 0 for e in forecast):
        legend += '<li><span class="swatch swatch-forecast" aria-hidden="true"></span>Forecast</li>'
    html = (f'<figure class="bars"><div class="bars-body"><div class="bars-y" aria-hidden="true">{y_axis}</div>'
            f'<div class="bars-plot">{"".join(svg)}<div class="bars-x" aria-hidden="true">{x_axis}</div></div></div>'
            f'<ul class="legend">{legend}</ul></figure>')
    return mark_safe(html)  # noqa: S308 - every value escaped


def _swatch_hatch(colour: str) -> str:
    tint = _tint(colour)
    return (f'<path d="M-1 3 L3 -1 M-1 9 L9 -1 M5 13 L13 5" stroke="{tint}" stroke-width="2"/>')
