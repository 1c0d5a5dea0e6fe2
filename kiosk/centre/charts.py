"""Charts drawn on the server as inline SVG: no script library, nothing fetched from the internet."""

from __future__ import annotations

from html import escape

# Inside the SVG: a chart served as an <img> does not see the page's stylesheet.
_STYLE = ("<style>.bar{fill:#1f7a9c}.axis{stroke:#99a}.ax{font:10px sans-serif;fill:#667}"
          ".l1{stroke:#1f7a9c;stroke-width:2}.l2{stroke:#c0392b;stroke-width:2;stroke-dasharray:4 3}"
          ".legend{font:11px sans-serif}.l1-t{fill:#1f7a9c}.l2-t{fill:#c0392b}</style>")


def bars(values: list[int], labels: list[str], title: str, width: int = 640, height: int = 180,
         every: int = 1) -> str:
    """A bar chart (today's hourly curve, the last 30 days' scans)."""
    n = max(1, len(values))
    top = max(values or [0]) or 1
    pad_l, pad_b, pad_t = 44, 22, 8
    w = (width - pad_l - 4) / n
    h = height - pad_b - pad_t
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>{_STYLE}',
           f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" class="ax">{top}</text>',
           f'<text x="{pad_l - 6}" y="{pad_t + h}" text-anchor="end" class="ax">0</text>',
           f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{width - 4}" y2="{pad_t + h}" class="axis"/>']
    for i, v in enumerate(values):
        bh = h * v / top
        x = pad_l + i * w
        out.append(f'<rect x="{x + 1:.1f}" y="{pad_t + h - bh:.1f}" width="{max(1.0, w - 2):.1f}" '
                   f'height="{bh:.1f}" class="bar"><title>{escape(labels[i])}: {v}</title></rect>')
        if i % every == 0:
            out.append(f'<text x="{x + w / 2:.1f}" y="{height - 6}" text-anchor="middle" class="ax">'
                       f'{escape(labels[i])}</text>')
    out.append("</svg>")
    return "".join(out)


def lines(series: list[tuple[str, list[int], str]], labels: list[str], title: str, width: int = 640,
          height: int = 180, every: int = 5) -> str:
    """Line chart of several series (venues with scans against venues with a code)."""
    top = max([max(s[1] or [0]) for s in series] + [1])
    pad_l, pad_b, pad_t = 52, 22, 8
    n = max(2, len(labels))
    h = height - pad_b - pad_t
    step = (width - pad_l - 8) / (n - 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>{_STYLE}',
           f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" class="ax">{top}</text>',
           f'<text x="{pad_l - 6}" y="{pad_t + h}" text-anchor="end" class="ax">0</text>',
           f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{width - 4}" y2="{pad_t + h}" class="axis"/>']
    for name, values, css in series:
        pts = " ".join(f"{pad_l + i * step:.1f},{pad_t + h - h * v / top:.1f}" for i, v in enumerate(values))
        out.append(f'<polyline points="{pts}" class="{css}" fill="none"><title>{escape(name)}</title></polyline>')
    for i, lab in enumerate(labels):
        if i % every == 0:
            out.append(f'<text x="{pad_l + i * step:.1f}" y="{height - 6}" text-anchor="middle" class="ax">'
                       f'{escape(lab)}</text>')
    legend_x = pad_l + 8
    for j, (name, _, css) in enumerate(series):
        out.append(f'<text x="{legend_x}" y="{pad_t + 14 + 14 * j}" class="legend {css}-t">— {escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
