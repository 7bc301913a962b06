"""The usage history chart (USE-2): a server-rendered SVG, readable without JavaScript.

Bars per day; every bar carries a ``<title>`` (its date and amount) and the
chart a ``<title>``/``<desc>`` for screen readers. Pages also print the same
numbers as a table. Colours come from classes the theme styles (with
presentation-attribute fallbacks, since the CSP forbids inline styles).
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 52, 20, 10, 26


def nice_ceiling(value: float) -> int:
    """A round number at or above ``value`` for the top of the axis (1, 2, 2.5 or 5 × 10^n)."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return int(10 * magnitude)


def bar_chart(
    days: list[dict],
    key: str,
    label,
    fmt_value,
    fmt_date,
    title: str,
    chart_id: str = "usage-chart",
) -> Markup:
    """An SVG bar chart of ``days[i][key]``; ``fmt_value``/``fmt_date`` format the labels."""
    values = [int(d.get(key, 0)) for d in days]
    top = nice_ceiling(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(values), 1)
    bar_w = max(1.0, slot * 0.7)
    total = sum(values)
    peak_i = max(range(len(values)), key=lambda i: values[i]) if values else 0
    desc = label(total, days[peak_i]["date"] if days else "", values[peak_i] if values else 0)
    out = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        out.append(
            f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#d9dee5" stroke-width="1"/>'
        )
        out.append(
            f'<text class="chart-label" x="{LEFT - 4}" y="{y + 4:.1f}" '
            f'text-anchor="end" font-size="10" fill="#5b6470">'
            f'{escape(fmt_value(int(top * fraction)))}</text>'
        )
    # A date under every 7th bar for a month, every 15th for a quarter; about six for longer.
    every = 7 if len(values) <= 31 else 15 if len(values) <= 92 else -(-len(values) // 6)
    for i, (d, v) in enumerate(zip(days, values)):
        h = plot_h * v / top
        x = LEFT + i * slot + (slot - bar_w) / 2
        out.append(
            f'<rect class="chart-bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" '
            f'width="{bar_w:.1f}" height="{h:.1f}" fill="#1f5fbf">'
            f'<title>{escape(fmt_date(d["date"]))}: {escape(fmt_value(v))}</title></rect>'
        )
        if (len(values) - 1 - i) % every == 0:
            out.append(
                f'<text class="chart-label" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="middle" font-size="10" fill="#5b6470">'
                f'{escape(fmt_date(d["date"], short=True))}</text>'
            )
    out.append("</svg>")
    return Markup("".join(out))


def day(iso: str) -> date:
    return date.fromisoformat(iso)
