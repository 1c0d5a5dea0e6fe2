"""Charts drawn on the server as inline SVG: no script library, nothing fetched from the internet."""

from __future__ import annotations

from html import escape

# Inside the SVG: a chart served as an <img> does not see the page's stylesheet. The charts are drawn
# 480 units wide and shown at the page's width: 17-unit text is 11.7 px or more from a phone's 330-px-wide
# chart up (issue 21.6: legible text), and a legend has its own band above the plot (never over a line).
FONT = 17
_STYLE = (f"<style>.bar{{fill:#1f7a9c}}.axis{{stroke:#99a}}.ax{{font:{FONT}px sans-serif;fill:#556}}"
          ".l1{stroke:#1f7a9c;stroke-width:3}.l2{stroke:#c0392b;stroke-width:3;stroke-dasharray:6 4}"
          f".legend{{font:{FONT}px sans-serif}}.l1-t{{fill:#1f7a9c}}.l2-t{{fill:#c0392b}}</style>")


def bars(values: list[int], labels: list[str], title: str, width: int = 480, height: int = 200,
         every: int = 1) -> str:
    """A bar chart (today's hourly curve, the last 30 days' scans)."""
    n = max(1, len(values))
    top = max(values or [0]) or 1
    pad_l, pad_b, pad_t = 12 + 9 * len(str(top)), 26, 10
    w = (width - pad_l - 4) / n
    h = height - pad_b - pad_t
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>{_STYLE}',
           f'<text x="{pad_l - 6}" y="{pad_t + 12}" text-anchor="end" class="ax">{top}</text>',
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


def lines(series: list[tuple[str, list[int], str]], labels: list[str], title: str, width: int = 480,
          height: int = 240, every: int = 7) -> str:
    """Line chart of several series (venues with scans against venues with a code); the legend above the plot."""
    top = max([max(s[1] or [0]) for s in series] + [1])
    # room on the left for the top figure and for half of the first day's label, centred on the axis
    pad_l, pad_b, pad_t = max(30, 12 + 9 * len(str(top))), 26, 10 + 22 * len(series)
    n = max(2, len(labels))
    h = height - pad_b - pad_t
    step = (width - pad_l - 8) / (n - 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>{_STYLE}',
           f'<text x="{pad_l - 6}" y="{pad_t + 12}" text-anchor="end" class="ax">{top}</text>',
           f'<text x="{pad_l - 6}" y="{pad_t + h}" text-anchor="end" class="ax">0</text>',
           f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{width - 4}" y2="{pad_t + h}" class="axis"/>']
    for name, values, css in series:
        pts = " ".join(f"{pad_l + i * step:.1f},{pad_t + h - h * v / top:.1f}" for i, v in enumerate(values))
        out.append(f'<polyline points="{pts}" class="{css}" fill="none"><title>{escape(name)}</title></polyline>')
    for i, lab in enumerate(labels):
        if i % every == 0:
            out.append(f'<text x="{pad_l + i * step:.1f}" y="{height - 6}" text-anchor="middle" class="ax">'
                       f'{escape(lab)}</text>')
    for j, (name, _, css) in enumerate(series):  # in the band above the plot: one line each
        out.append(f'<text x="4" y="{18 + 22 * j}" class="legend {css}-t">— {escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)
