"""A dependency-free horizontal bar chart as SVG, for docs/benchmarks.md."""

from __future__ import annotations

import html
import math


def bar_chart_svg(title: str, groups: list[tuple[str, list[tuple[str, float]]]], unit: str,
                  log_scale: bool = True) -> str:
    """`groups`: [(group title, [(bar label, value), ...]), ...]; one row per bar."""
    rows = sum(len(bars) for _, bars in groups) + len(groups)
    row_h, left, width, top = 18, 250, 760, 40
    height = top + rows * row_h + 30
    vmax = max(v for _, bars in groups for _, v in bars)
    vmin = min(v for _, bars in groups for _, v in bars if v > 0)

    def scale(v: float) -> float:
        if v <= 0:
            return 0.0
        if log_scale:
            lo = math.floor(math.log10(vmin))
            hi = math.ceil(math.log10(vmax))
            return (math.log10(v) - lo) / max(hi - lo, 1) * (width - left - 80)
        return v / vmax * (width - left - 80)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>']
    y = top
    palette = {"llmbridge": "#2b7bb9"}
    for gtitle, bars in groups:
        out.append(f'<text x="10" y="{y + 13}" font-weight="bold">{html.escape(gtitle)}</text>')
        y += row_h
        for label, v in bars:
            color = next((c for k, c in palette.items() if label.startswith(k)), "#9aa5b1")
            w = scale(v)
            out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{html.escape(label)}</text>')
            out.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{color}"/>')
            out.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{v:,.1f} {html.escape(unit)}</text>')
            y += row_h
    scale_note = "log scale" if log_scale else "linear scale"
    out.append(f'<text x="10" y="{height - 10}" fill="#555">{scale_note}; longer is faster</text>')
    out.append("</svg>")
    return "\n".join(out)
