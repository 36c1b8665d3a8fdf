"""A small line chart as inline SVG: one point per run, no script, no CDN (the page works offline)."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD = 520, 160, 36


@dataclass(frozen=True)
class Point:
    label: str  # the run id, shown on hover
    value: float


def line_chart(title: str, points: list[Point], *, unit: str = "", test_id: str = "") -> str:
    """An <svg> of `points` in order (oldest first); a note instead when there is nothing to draw."""
    if not points:
        return f'<p class="empty" data-testid="{escape(test_id)}">{escape(title)}: no runs with a value yet</p>'
    low, high = min(p.value for p in points), max(p.value for p in points)
    flat = high == low  # one value throughout: a level line across the middle, one label
    span = (high - low) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(points) - 1, 1)

    def xy(index: int, value: float) -> tuple[float, float]:
        x = PAD + index * step if len(points) > 1 else WIDTH / 2
        share = 0.5 if flat else (value - low) / span
        return round(x, 1), round(HEIGHT - PAD - share * (HEIGHT - 2 * PAD), 1)

    coords = [xy(i, p.value) for i, p in enumerate(points)]
    dots = "".join(
        f'<circle class="point" cx="{x}" cy="{y}" r="4"><title>{escape(p.label)}: {_fmt(p.value)}{unit}</title></circle>'
        for (x, y), p in zip(coords, points))
    line = " ".join(f"{x},{y}" for x, y in coords)
    return (f'<svg role="img" aria-label="{escape(title)}" data-testid="{escape(test_id)}" width="{WIDTH}" '
            f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
            f'<text x="{PAD}" y="16" class="title">{escape(title)}</text>'
            + (f'<text x="4" y="{HEIGHT / 2}" class="axis">{_fmt(low)}{unit}</text>' if flat else
               f'<text x="4" y="{PAD}" class="axis">{_fmt(high)}{unit}</text>'
               f'<text x="4" y="{HEIGHT - PAD}" class="axis">{_fmt(low)}{unit}</text>')
            + f'<text x="{PAD}" y="{HEIGHT - 8}" class="axis">{escape(points[0].label)}</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" class="axis" text-anchor="end">{escape(points[-1].label)}</text>'
            f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="base"/>'
            f'<polyline points="{line}" fill="none" class="line"/>{dots}</svg>')


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) >= 0.01 or value == 0 else f"{value:.3f}" if abs(value) >= 0.001 else f"{value:.6f}".rstrip("0")
