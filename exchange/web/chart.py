"""Charts as inline SVG, drawn on the server: no chart library and no script needed.

Each chart is an ``<svg role="img">`` with a title and description for assistive technology;
the pages show the same figures in a table next to it. Colours are presentation attributes,
not style attributes, so the pages' Content-Security-Policy (style-src 'self') allows them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Final

from markupsafe import Markup

# Colour-blind-safe palette (Okabe–Ito), each at least 3:1 against white.
PALETTE: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8F6B00", "#56B4E9", "#555555")
INK: Final = "#1f2328"
GRID: Final = "#8c959f"


def colour(index: int) -> str:
    """The palette colour of series ``index``."""
    return PALETTE[index % len(PALETTE)]


def _svg(width: int, height: int, title: str, desc: str, body: str) -> Markup:
    return Markup(
        f'<svg role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" class="chart" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{body}</svg>"
    )


def stacked_bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    title: str,
    width: int = 720,
    height: int = 240,
) -> Markup:
    """Vertical bars, one per label, stacked by series (series name -> one value per label)."""
    left, right, top, bottom = 40, 10, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    peak = max([*totals, 1])
    step = plot_w / max(len(labels), 1)
    bar = max(step * 0.7, 2)
    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="{GRID}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11" fill="{INK}">'
        f"{peak}</text>",
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11" '
        f'fill="{INK}">0</text>',
    ]
    for i, label in enumerate(labels):
        x = left + i * step + (step - bar) / 2
        y = float(top + plot_h)
        for s, values in enumerate(series.values()):
            h = plot_h * values[i] / peak
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{colour(s)}"/>'
                )
        if totals[i]:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                f'font-size="11" fill="{INK}">{totals[i]}</text>'
            )
        if len(labels) <= 16 or i % 2 == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'font-size="11" fill="{INK}">{escape(label)}</text>'
            )
    desc = "; ".join(f"{label}: {total}" for label, total in zip(labels, totals, strict=True))
    return _svg(width, height, title, desc, "".join(parts))


def horizontal_bars(
    rows: Sequence[tuple[str, int]], *, title: str, width: int = 720, row_height: int = 30
) -> Markup:
    """One horizontal bar per (label, value), the value written at its end."""
    label_w, right = 260, 50
    height = max(len(rows), 1) * row_height + 8
    peak = max([v for _label, v in rows] + [1])
    parts = []
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_height
        w = (width - label_w - right) * value / peak
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row_height / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="13" fill="{INK}">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_height - 10}" '
            f'fill="{colour(2)}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + row_height / 2 + 4:.1f}" font-size="13" '
            f'fill="{INK}">{value}</text>'
        )
    desc = "; ".join(f"{label}: {value}" for label, value in rows)
    return _svg(width, height, title, desc, "".join(parts))


def sparkline(
    values: Sequence[float | None], *, title: str, width: int = 160, height: int = 36
) -> Markup:
    """A line of rates (0..1) over runs, oldest first; runs without rows are skipped."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    peak = max([v for _i, v in points] + [0.05])
    pad = 3
    span = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> str:
        x = pad + (width - 2 * pad) * i / span
        y = height - pad - (height - 2 * pad) * v / peak
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="{GRID}" stroke-width="1"/>'
    ]
    if len(points) > 1:
        line = " ".join(xy(i, v) for i, v in points)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour(1)}" stroke-width="2"/>'
        )
    if points:
        i, v = points[-1]
        x, y = xy(i, v).split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{colour(1)}"/>')
    desc = ", ".join("—" if v is None else f"{v:.1%}" for v in values)
    return _svg(width, height, title, desc or "no runs", "".join(parts))
