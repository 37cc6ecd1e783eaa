"""Bar charts as SVG, drawn on the server: no JavaScript, readable without the dashboard's CSS."""

from __future__ import annotations

from html import escape

ROW_H = 22
LABEL_W = 220
BAR_W = 360
VALUE_W = 90


def bar_chart(title: str, values: dict[str, float], *, unit: str = "$") -> str:
    """A horizontal bar per label, scaled to the largest value, the value written beside it."""
    top = max(values.values(), default=0.0) or 1.0
    height = ROW_H * max(1, len(values)) + 28
    width = LABEL_W + BAR_W + VALUE_W
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    if not values:
        parts.append('<text x="0" y="40">no model calls yet</text>')
    for i, (label, value) in enumerate(values.items()):
        y = 28 + i * ROW_H
        bar = max(1.0, BAR_W * value / top)
        text = f"{unit}{value:.4f}" if unit == "$" else f"{value:g}{unit}"
        parts += [
            f'<text x="0" y="{y + 15}" class="label">{escape(label[:32])}</text>',
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{bar:.1f}" height="{ROW_H - 6}" '
            f'fill="#4a78c2"><title>{escape(label)}: {escape(text)}</title></rect>',
            f'<text x="{LABEL_W + bar + 6:.1f}" y="{y + 15}" class="value">{escape(text)}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)
