"""Charts as inline SVG, rendered on the server (no JS, no build step). Values are plain numbers."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f6feb", "#2da44e", "#d4a72c", "#cf222e", "#8250df", "#57606a")


def bars(title: str, items: list[tuple[str, float]], *, width: int = 420, unit: str = "") -> str:
    """Horizontal bars, one per label."""
    if not items:
        return f'<svg class="chart" role="img" width="{width}" height="40"><title>{escape(title)}</title>' \
               f'<text x="8" y="24">—</text></svg>'
    row, label_w = 22, 150
    height = row * len(items) + 10
    top = max(v for _, v in items) or 1
    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
             f'<title>{escape(title)}</title>']
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        w = (width - label_w - 70) * value / top
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                     f'fill="{PALETTE[0]}"><title>{escape(label)}: {value:g}{unit}</title></rect>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11">{value:g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked(title: str, rows: list[tuple[str, dict[str, float]]], series: list[str], *, width: int = 420) -> str:
    """Horizontal stacked bars (e.g. classes A/B/C/D per region), with a legend."""
    row, label_w = 22, 60
    height = row * len(rows) + 30
    top = max((sum(v.values()) for _, v in rows), default=1) or 1
    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
             f'<title>{escape(title)}</title>']
    for i, (label, values) in enumerate(rows):
        y, x = 5 + i * row, float(label_w)
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>')
        for j, name in enumerate(series):
            w = (width - label_w - 10) * values.get(name, 0) / top
            if w > 0:
                parts.append(f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                             f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(name)}: '
                             f'{values.get(name, 0):g}</title></rect>')
            x += w
    y = height - 12
    for j, name in enumerate(series):
        parts.append(f'<rect x="{j * 130}" y="{y - 9}" width="10" height="10" '
                     f'fill="{PALETTE[j % len(PALETTE)]}"/><text x="{j * 130 + 14}" y="{y}" '
                     f'font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def gauge(title: str, ok: bool, text: str) -> str:
    colour = PALETTE[1] if ok else PALETTE[3]
    return (f'<svg class="chart" role="img" width="220" height="40"><title>{escape(title)}</title>'
            f'<circle cx="16" cy="20" r="10" fill="{colour}"/><text x="34" y="25" font-size="13">{escape(text)}'
            f'</text></svg>')
