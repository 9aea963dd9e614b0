"""Small inline-SVG charts for HTML/PDF reports (Qt-free, no script, every label escaped)."""

from __future__ import annotations

from html import escape

NAVY = "#0a1a3a"
CYAN = "#00a8c6"
GREY = "#b9c1cd"
RED = "#d9001b"
FONT = 'font-family="Noto Sans CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, sans-serif"'


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for mag in range(0, 10):
        for step in (1, 2, 2.5, 5):
            cand = step * 10**mag
            if cand >= v:
                return float(cand)
    return float(v)


def bar_chart(
    labels: list[str],
    values: list[float],
    *,
    compare: list[float] | None = None,
    width: int = 680,
    height: int = 190,
    label_every: int = 1,
    title: str = "",
    legend: tuple[str, str] | None = None,
) -> str:
    """Vertical bars (``values``), optionally a grey comparison line (``compare``)."""
    n = len(values)
    left, right, top, bottom = 38, 8, 18, 28
    pw, ph = width - left - right, height - top - bottom
    vmax = _nice_max(max([*values, *(compare or []), 0]))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" {FONT} font-size="9">'
    ]
    if title:
        out.append(f'<text x="{left}" y="11" fill="{NAVY}" font-weight="700">{escape(title)}</text>')
    for i in range(5):
        y = top + ph - ph * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#e3e7ee"/>')
        out.append(
            f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#5b6577">{vmax * i / 4:g}</text>'
        )
    if n:
        bw = pw / n
        for i, v in enumerate(values):
            h = ph * (v / vmax)
            x = left + i * bw
            out.append(f'<rect x="{x + bw * 0.12:.1f}" y="{top + ph - h:.1f}" width="{max(bw * 0.76, 0.5):.1f}" '
                       f'height="{h:.1f}" fill="{NAVY}"><title>{escape(labels[i])}: {v:g}</title></rect>')  # fmt: skip
            if i % max(label_every, 1) == 0:
                out.append(f'<text x="{x + bw / 2:.1f}" y="{top + ph + 12}" text-anchor="middle" fill="#5b6577">'
                           f"{escape(labels[i])}</text>")  # fmt: skip
        if compare:
            pts = " ".join(
                f"{left + (i + 0.5) * bw:.1f},{top + ph - ph * (c / vmax):.1f}" for i, c in enumerate(compare)
            )
            out.append(f'<polyline points="{pts}" fill="none" stroke="{CYAN}" stroke-width="1.5"/>')
    if legend:
        lx = left + pw - 200
        out.append(f'<rect x="{lx}" y="4" width="10" height="8" fill="{NAVY}"/>'
                   f'<text x="{lx + 14}" y="11" fill="{NAVY}">{escape(legend[0])}</text>')  # fmt: skip
        out.append(f'<line x1="{lx + 100}" y1="8" x2="{lx + 112}" y2="8" stroke="{CYAN}" stroke-width="2"/>'
                   f'<text x="{lx + 116}" y="11" fill="{NAVY}">{escape(legend[1])}</text>')  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def hbar_chart(rows: list[tuple[str, float]], *, width: int = 330, bar_h: int = 16, title: str = "",
               fmt: str = "{:,.0f}") -> str:  # fmt: skip
    """Horizontal bars, one row per ``(label, value)``, largest first as given."""
    left, right, top = 96, 46, 18
    height = top + bar_h * len(rows) + 6
    pw = width - left - right
    vmax = max([v for _, v in rows] + [0]) or 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" {FONT} font-size="9">'
    ]
    if title:
        out.append(f'<text x="2" y="11" fill="{NAVY}" font-weight="700">{escape(title)}</text>')
    for i, (lab, v) in enumerate(rows):
        y = top + i * bar_h
        w = pw * v / vmax
        short = lab if len(lab) <= 8 else lab[:7] + "…"
        out.append(
            f'<text x="{left - 4}" y="{y + bar_h * 0.68:.1f}" text-anchor="end" fill="#1c2533">{escape(short)}</text>'
        )
        out.append(f'<rect x="{left}" y="{y + 2}" width="{max(w, 0.5):.1f}" height="{bar_h - 5}" fill="{NAVY}">'
                   f"<title>{escape(lab)}: {escape(fmt.format(v))}</title></rect>")  # fmt: skip
        out.append(
            f'<text x="{left + w + 3:.1f}" y="{y + bar_h * 0.68:.1f}" fill="#1c2533">{escape(fmt.format(v))}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def histogram(minutes: list[float], *, limit: float = 10.0, bin_min: float = 1.0, max_min: float = 40.0,
              width: int = 680, height: int = 170, title: str = "") -> str:  # fmt: skip
    """Distribution of arrival minutes in ``bin_min`` bins up to ``max_min`` (the last bin holds
    everything beyond), with a red line at ``limit``."""
    nb = int(max_min / bin_min)
    counts = [0] * (nb + 1)
    for m in minutes:
        counts[min(int(m // bin_min), nb)] += 1
    labels = [f"{i * bin_min:g}" for i in range(nb)] + [f">{max_min:g}"]
    svg = bar_chart(labels, counts, width=width, height=height, label_every=5, title=title)
    left, right = 38, 8
    pw = width - left - right
    x = left + pw * (limit / bin_min) / (nb + 1)
    line = (f'<line x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="{height - 28}" stroke="{RED}" stroke-width="1.5" '
            f'stroke-dasharray="4 2"/><text x="{x + 3:.1f}" y="26" fill="{RED}">{limit:g} 分钟</text>')  # fmt: skip
    return svg.replace("</svg>", line + "</svg>")
