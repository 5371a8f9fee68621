"""Tiny dependency-free SVG charts (bar, histogram, line) for the HTML report and benches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
)
_FONT = 'font-family="sans-serif" font-size="11"'


def _open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-family="sans-serif" '
        f'font-size="13" font-weight="bold">{escape(title)}</text>',
    ]


def _y_grid(
    left: float, top: float, plot_w: float, plot_h: float, lo: float, hi: float
) -> list[str]:
    """Five horizontal grid lines from ``lo`` (bottom) to ``hi`` (top), labelled on the left."""
    out = []
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4}" text-anchor="end" {_FONT}>{v:g}</text>')
    return out


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="{y + 15 * i}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{y + 9 + 15 * i}" {_FONT}>{escape(name)}</text>')
    return out


def _right_margin(names: Sequence[str], minimum: int = 110) -> int:
    """Room right of the plot for a legend of ``names`` (about 6 px a character)."""
    return max(minimum, 30 + 6 * max((len(n) for n in names), default=0))


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def bar_chart(
    groups: Sequence[str],
    series: dict[str, Sequence[float | None]],
    title: str,
    *,
    y_max: float | None = 1.0,
    y_min: float = 0.0,
    width: int = 720,
    height: int = 300,
) -> str:
    """Grouped bars: one group per label in ``groups``, one bar per series (axis from y_min)."""
    left, right, top, bottom = 40, _right_margin(list(series)), 28, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in series.values() for v in vs if v is not None]
    top_value = y_max or _nice_max(max(values, default=1.0))
    out = _open(width, height, title)
    span = max(top_value - y_min, 1e-9)
    out += _y_grid(left, top, plot_w, plot_h, y_min, y_min + span)
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    for g, label in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, (name, vs) in enumerate(series.items()):
            v = vs[g] if g < len(vs) else None
            if v is None:
                continue
            h = plot_h * (min(max(v, y_min), top_value) - y_min) / span
            out.append(
                f'<rect x="{x0 + s * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(name)} {escape(label)}: {v:.3f}</title></rect>"
            )
        out.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
            f"{_FONT}>{escape(label)}</text>"
        )
    out += _legend(list(series), left + plot_w + 10, top + 4)
    out.append("</svg>")
    return "\n".join(out)


def histogram(
    data: dict[str, Sequence[float]],
    title: str,
    *,
    x_label: str = "ms",
    bins: int = 20,
    width: int = 720,
    height: int = 280,
) -> str:
    """Overlaid histograms, one per series, over common bins."""
    left, right, top, bottom = 40, _right_margin(list(data)), 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in data.values() for v in vs]
    out = _open(width, height, title)
    if not values:
        out.append("</svg>")
        return "\n".join(out)
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1
    step = (hi - lo) / bins
    counts = {
        name: [
            sum(
                1
                for v in vs
                if lo + i * step <= v < lo + (i + 1) * step or (i == bins - 1 and v == hi)
            )
            for i in range(bins)
        ]
        for name, vs in data.items()
    }
    top_count = _nice_max(max(max(c) for c in counts.values()))
    out += _y_grid(left, top, plot_w, plot_h, 0, top_count)
    bar_w = plot_w / bins
    for s, (name, cs) in enumerate(counts.items()):
        colour = PALETTE[s % len(PALETTE)]
        for i, c in enumerate(cs):
            if c:
                h = plot_h * c / top_count
                out.append(
                    f'<rect x="{left + i * bar_w:.1f}" y="{top + plot_h - h:.1f}" '
                    f'width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{colour}" fill-opacity="0.6">'
                    f"<title>{escape(name)}: {c} in [{lo + i * step:.0f}, "
                    f"{lo + (i + 1) * step:.0f}) {escape(x_label)}</title></rect>"
                )
    for i in range(0, bins + 1, max(1, bins // 5)):
        x = left + i * bar_w
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>'
            f"{lo + i * step:.0f}</text>"
        )
    out.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle" {_FONT}>'
        f"{escape(x_label)}</text>"
    )
    out += _legend(list(data), left + plot_w + 10, top + 4)
    out.append("</svg>")
    return "\n".join(out)


def line_chart(
    x: Sequence[float],
    series: dict[str, Sequence[float | None]],
    title: str,
    *,
    x_label: str = "",
    y_label: str = "",
    log_x: bool = False,
    width: int = 720,
    height: int = 300,
) -> str:
    """Lines with markers over shared x values (optionally log-scaled x)."""
    left, right, top, bottom = 50, _right_margin(list(series), 130), 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs = [fx(v) for v in x]
    x_lo, x_hi = min(xs), max(xs)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    values = [v for vs in series.values() for v in vs if v is not None]
    top_value = _nice_max(max(values, default=1.0))

    def px(v: float) -> float:
        return left + plot_w * (fx(v) - x_lo) / (x_hi - x_lo)

    def py(v: float) -> float:
        return top + plot_h - plot_h * v / top_value

    out = _open(width, height, title)
    out += _y_grid(left, top, plot_w, plot_h, 0, top_value)
    for v in x:
        out.append(
            f'<text x="{px(v):.1f}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>'
            f"{v:g}</text>"
        )
    for s, vs in enumerate(series.values()):
        colour = PALETTE[s % len(PALETTE)]
        pts = [(px(a), py(b)) for a, b in zip(x, vs, strict=False) if b is not None]
        if len(pts) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for a, b in pts:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>')
    out.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle" {_FONT}>'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text x="12" y="{top + plot_h / 2}" text-anchor="middle" {_FONT} '
        f'transform="rotate(-90 12 {top + plot_h / 2})">{escape(y_label)}</text>'
    )
    out += _legend(list(series), left + plot_w + 10, top + 4)
    out.append("</svg>")
    return "\n".join(out)
