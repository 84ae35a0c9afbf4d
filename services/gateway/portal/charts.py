"""Charts as inline SVG, rendered on the server (no JS, no build step). Values are plain numbers."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f6feb", "#2da44e", "#d4a72c", "#cf222e", "#8250df", "#57606a")


def _id(chart_id: str) -> str:
    return f' id="{escape(chart_id)}"' if chart_id else ""


def bars(title: str, items: list[tuple[str, float]], *, width: int = 420, unit: str = "", chart_id: str = "") -> str:
    """Horizontal bars, one per label."""
    if not items:
        return f'<svg class="chart"{_id(chart_id)} role="img" width="{width}" height="40"><title>{escape(title)}' \
               f'</title><text x="8" y="24">—</text></svg>'
    row, label_w = 22, 150
    height = row * len(items) + 10
    top = max(v for _, v in items) or 1
    parts = [f'<svg class="chart"{_id(chart_id)} role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>']
    for i, (label, value) in enumerate(items):
        y = 5 + i * row
        w = (width - label_w - 70) * value / top
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                     f'fill="{PALETTE[0]}"><title>{escape(label)}: {value:g}{unit}</title></rect>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11">{value:g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked(title: str, rows: list[tuple[str, dict[str, float]]], series: list[str], *, width: int = 420,
            chart_id: str = "", label_w: int = 60) -> str:
    """Horizontal stacked bars (e.g. classes A/B/C/D per region), with a legend."""
    row = 22
    gap = max(40, 20 + 7 * max((len(n) for n in series), default=1))  # legend entries side by side, wrapped
    per_line = max(1, width // gap)
    legend_lines = (len(series) + per_line - 1) // per_line
    height = row * len(rows) + 14 + 16 * legend_lines
    top = max((sum(v.values()) for _, v in rows), default=1) or 1
    parts = [f'<svg class="chart"{_id(chart_id)} role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>']
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
    for j, name in enumerate(series):
        lx, ly = (j % per_line) * gap, row * len(rows) + 20 + 16 * (j // per_line)
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" '
                     f'fill="{PALETTE[j % len(PALETTE)]}"/><text x="{lx + 14}" y="{ly}" '
                     f'font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def gauge(title: str, ok: bool, text: str) -> str:
    colour = PALETTE[1] if ok else PALETTE[3]
    return (f'<svg class="chart" role="img" width="220" height="40"><title>{escape(title)}</title>'
            f'<circle cx="16" cy="20" r="10" fill="{colour}"/><text x="34" y="25" font-size="13">{escape(text)}'
            f'</text></svg>')


def lines(title: str, series: dict[str, list[tuple[float, float]]], *, width: int = 420, height: int = 220,
          unit: str = "", chart_id: str = "") -> str:
    """One polyline per series over shared x values (e.g. an indicator per region over years), with a legend."""
    points = [p for values in series.values() for p in values]
    if not points:
        return f'<svg class="chart"{_id(chart_id)} role="img" width="{width}" height="40"><title>{escape(title)}' \
               f'</title><text x="8" y="24">—</text></svg>'
    left, right, top, legend = 50, 10, 10, 18 * ((len(series) + 2) // 3) + 24
    plot_h = height - top - legend
    xs = sorted({x for x, _ in points})
    y_max = max(y for _, y in points) or 1.0
    step = (width - left - right) / max(1, len(xs) - 1)

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (xs.index(x) * step if len(xs) > 1 else (width - left - right) / 2), top + plot_h * (1 - y / y_max)

    parts = [f'<svg class="chart"{_id(chart_id)} role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#8c959f"/>',
             f'<text x="0" y="{top + 10}" font-size="11">{y_max:.4g}{escape(unit)}</text>',
             f'<text x="0" y="{top + plot_h}" font-size="11">0</text>']
    for x in xs:
        px, _ = at(x, 0)
        parts.append(f'<text x="{px - 14:.1f}" y="{top + plot_h + 14}" font-size="11">{x:g}</text>')
    for j, (name, values) in enumerate(series.items()):
        colour = PALETTE[j % len(PALETTE)]
        coords = [at(x, y) for x, y in sorted(values)]
        parts.append(f'<polyline class="line" fill="none" stroke="{colour}" stroke-width="2" points="'
                     + " ".join(f"{px:.1f},{py:.1f}" for px, py in coords) + '"/>')
        for (x, y), (px, py) in zip(sorted(values), coords, strict=True):
            parts.append(f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}">'
                         f'<title>{escape(name)} {x:g}: {y:.4g}{escape(unit)}</title></circle>')
        lx, ly = (j % 3) * 135, top + plot_h + 34 + 18 * (j // 3)
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{ly}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def columns(title: str, items: list[tuple[str, float]], *, width: int = 420, height: int = 160,
            chart_id: str = "", label_every: int = 5) -> str:
    """Vertical bars over time (e.g. bids per minute), labelling every `label_every`-th column."""
    if not items:
        return f'<svg class="chart"{_id(chart_id)} role="img" width="{width}" height="40"><title>{escape(title)}' \
               f'</title><text x="8" y="24">—</text></svg>'
    left, bottom = 30, 20
    top_value = max(v for _, v in items) or 1
    slot = (width - left) / len(items)
    plot_h = height - bottom - 10
    parts = [f'<svg class="chart"{_id(chart_id)} role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
             f'<text x="0" y="18" font-size="11">{top_value:g}</text>']
    for i, (label, value) in enumerate(items):
        h = plot_h * value / top_value
        x = left + i * slot
        if value > 0:
            parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{10 + plot_h - h:.1f}" '
                         f'width="{max(1.0, slot - 2):.1f}" height="{h:.1f}" fill="{PALETTE[0]}">'
                         f'<title>{escape(label)}: {value:g}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 4}" font-size="10">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
