"""Charts drawn on the server as SVG: one bar per day, so the page needs no script and
nothing from another host (the pages' CSP allows neither). Each bar carries its day and
value (`data-day`, `data-value`) and a <title> the browser shows on hover; colours come
from the console's stylesheet (classes), never from inline styles. A negative value (a
day's margin below zero) is a bar below the zero line."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 26


@dataclass(frozen=True)
class Point:
    day: date
    value: Decimal


def _span(points: Sequence[Point]) -> tuple[Decimal, Decimal]:
    values = [p.value for p in points]
    low, high = min([Decimal(0), *values]), max([Decimal(0), *values])
    return (low, high) if high > low else (Decimal(0), Decimal(1))


def _attrs(**values: object) -> str:
    return " ".join(
        f'{name.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for name, v in values.items()
    )


def _axis(
    low: Decimal, high: Decimal, y: Callable[[Decimal], float], label: Callable[[Decimal], str]
) -> list[str]:
    marks = sorted({low, Decimal(0), high})
    parts = []
    for value in marks:
        at = round(y(value), 1)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at}" y2="{at}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{at + 4}" text-anchor="end">'
            f"{escape(label(value))}</text>"
        )
    return parts


def bar_chart(
    chart_id: str, title: str, points: Sequence[Point], label: Callable[[Decimal], str]
) -> Markup:
    """An SVG bar chart of `points` (oldest first); `label` formats a value."""
    low, high = _span(points)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(points), 1)

    def y(value: Decimal) -> float:
        return TOP + float((high - value) / (high - low)) * plot_h

    zero = y(Decimal(0))
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-t">',
        f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
        *_axis(low, high, y, label),
    ]
    for i, point in enumerate(points):
        top = y(point.value)
        x = LEFT + i * slot + slot * 0.15
        kind = "bar negative" if point.value < 0 else "bar"
        rect = _attrs(
            class_=kind,
            x=round(x, 1),
            y=round(min(top, zero), 1),
            width=round(slot * 0.7, 1),
            height=round(max(abs(zero - top), 0.5), 1),
            data_day=point.day.isoformat(),
            data_value=point.value,
        )
        hover = f"{point.day.isoformat()}: {label(point.value)}"
        parts.append(f"<rect {rect}><title>{escape(hover)}</title></rect>")
        if (len(points) - 1 - i) % 7 == 0:  # the last day, and every week before it
            parts.append(
                f'<text class="tick" x="{round(x + slot * 0.35, 1)}" y="{HEIGHT - 8}" '
                f'text-anchor="middle">{point.day.strftime("%d.%m")}</text>'
            )
    at = round(zero, 1)
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at}" y2="{at}"/>')
    parts.append("</svg>")
    # Every text in it went through escape(); the rest is numbers and fixed markup.
    return Markup("".join(parts))  # noqa: S704
