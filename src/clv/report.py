"""Render the customer-value report: one self-contained HTML file with inline SVG charts.

The file opens offline (no scripts, fonts, images or stylesheets are fetched), so it can be
archived beside a model version or opened straight from a CI artefact. It is rebuilt from the
rpt_* tables on every run; a missing or empty table degrades to a visible "No data" message in
place of its chart instead of failing the run.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path

import pandas as pd

CHARTS: tuple[str, ...] = (
    "transactions-over-time",
    "order-values",
    "cohorts",
    "forecast-distribution",
    "forecast-intervals",
    "decile-calibration",
    "interval-coverage",
    "baselines-vs-model",
    "purchase-reliability",
    "accuracy-over-time",
    "feature-importance",
    "data-quality",
)

WIDTH = 760  # every chart shares one viewBox width so text sizes match across charts
BLUE = "#3b6fb6"
ORANGE = "#e08a2c"
GREY = "#8c8c8c"
GREEN = "#2e8b57"
RED = "#c0392b"
GRID = "#e3e3e3"
AXIS = "#9a9a9a"
MODEL_ORDER = ("lightgbm", "btyd", "naive")
MODEL_COLOURS = {"lightgbm": BLUE, "btyd": ORANGE, "naive": GREY}
HEAT_STOPS = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
TOP_FEATURES = 15
IMPORTANCE_TARGET = "prob_purchase"


class _Unavailable(Exception):
    """A chart cannot be drawn; its message is shown in the chart's place."""


@dataclass(frozen=True)
class _Context:
    tables: Mapping[str, pd.DataFrame]
    currency: str


@dataclass(frozen=True)
class _Chart:
    svg: str
    extra_html: str = ""  # tables or notes that belong under the chart


@dataclass(frozen=True)
class _Box:
    """Plot area in SVG coordinates (y grows downwards)."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class _Linear:
    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        span = self.d1 - self.d0
        if span == 0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (value - self.d0) / span * (self.r1 - self.r0)


# ---------------------------------------------------------------------------------------------
# Formatting


def _esc(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    """Compact coordinates: a tenth of a pixel is invisible and keeps the file small."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt_int(value: float) -> str:
    return "–" if _is_missing(value) else f"{round(float(value)):,}"


def _fmt_amount(value: float) -> str:
    if _is_missing(value):
        return "–"
    value = float(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _fmt_pct(value: float, digits: int = 1) -> str:
    return "–" if _is_missing(value) else f"{float(value) * 100:.{digits}f}%"


def _fmt_date(value: object) -> str:
    if _is_missing(value):
        return "–"
    if isinstance(value, datetime | pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _fmt_value(value: object) -> str:
    """Metric-table cells: integers with separators, floats to four significant digits."""
    if _is_missing(value):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        number = float(value)  # type: ignore[arg-type]
        if number.is_integer() and abs(number) >= 1:
            return f"{int(number):,}"
        return f"{number:,.4g}" if abs(number) < 1e4 else f"{number:,.0f}"
    return _fmt_date(value)


def _decimals_for(step: float) -> int:
    """Fewest decimals that print a tick step exactly (2.5 needs one, 20 needs none)."""
    for decimals in range(7):
        if abs(round(step, decimals) - step) < 1e-9 * max(1.0, abs(step)):
            return decimals
    return 6


def _tick_formatter(ticks: Sequence[float], percent: bool = False) -> Callable[[float], str]:
    step = (ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    if percent:
        decimals = _decimals_for(step * 100)
        return lambda v: f"{v * 100:.{decimals}f}%"
    top = max(abs(t) for t in ticks)
    divisor, suffix = (1e6, "M") if top >= 1e6 else (1e3, "k") if top >= 1e4 else (1.0, "")
    decimals = _decimals_for(step / divisor)
    # A bare 0 reads better than "0k" at the origin.
    return lambda v: "0" if v == 0 else f"{v / divisor:,.{decimals}f}{suffix}"


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    low, high = min(low, high), max(low, high)
    if high == low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw - 1e-12)
    start = math.floor(low / step + 1e-9) * step
    stop = math.ceil(high / step - 1e-9) * step
    return [round(start + i * step, 12) for i in range(round((stop - start) / step) + 1)]


def _text_width(text: str, size: float = 11) -> float:
    """Rough width of proportional text; good enough to lay out margins and legends."""
    return len(text) * size * 0.58


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# SVG primitives


def _attrs(**attributes: object) -> str:
    parts = []
    for key, value in attributes.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        text = _num(value) if isinstance(value, float) else _esc(value)
        parts.append(f'{name}="{text}"')
    return " ".join(parts)


def _tip(tip: str | None) -> str:
    # A <title> child gives a hover tooltip with the exact value, without any script.
    return f"<title>{_esc(tip)}</title>" if tip else ""


def _rect(
    x: float, y: float, w: float, h: float, fill: str, tip: str | None = None, **extra: object
) -> str:
    x, w = (x + w, -w) if w < 0 else (x, w)
    y, h = (y + h, -h) if h < 0 else (y, h)
    body = _attrs(x=float(x), y=float(y), width=float(w), height=float(h), fill=fill, **extra)
    return f"<rect {body}>{_tip(tip)}</rect>" if tip else f"<rect {body}/>"


def _line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    stroke: str = AXIS,
    width: float = 1,
    **extra: object,
) -> str:
    body = _attrs(x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2), stroke=stroke, **extra)
    return f'<line {body} stroke-width="{_num(width)}"/>'


def _circle(
    x: float, y: float, r: float, fill: str, tip: str | None = None, **extra: object
) -> str:
    body = _attrs(cx=float(x), cy=float(y), r=float(r), fill=fill, **extra)
    return f"<circle {body}>{_tip(tip)}</circle>" if tip else f"<circle {body}/>"


def _path(points: Iterable[tuple[float, float]], stroke: str, width: float = 2) -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{_num(x)},{_num(y)}" for i, (x, y) in enumerate(points))
    return f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{_num(width)}"/>'


def _text(
    x: float,
    y: float,
    text: str,
    cls: str = "tick",
    anchor: str = "start",
    rotate: bool = False,
    **extra: object,
) -> str:
    transform = f"rotate(-90 {_num(x)} {_num(y)})" if rotate else None
    body = _attrs(x=float(x), y=float(y), class_=cls, text_anchor=anchor, transform=transform)
    more = _attrs(**extra)
    return f"<text {body}{' ' + more if more else ''}>{_esc(text)}</text>"


def _svg(height: float, label: str, parts: Iterable[str], defs: str = "") -> str:
    # No xmlns: inline SVG in HTML5 does not need it, and the page stays free of any URL.
    head = f'<svg viewBox="0 0 {WIDTH} {_num(height)}" role="img" aria-label="{_esc(label)}">'
    return head + (f"<defs>{defs}</defs>" if defs else "") + "".join(parts) + "</svg>"


def _y_axis(
    box: _Box,
    scale: _Linear,
    ticks: Sequence[float],
    fmt: Callable[[float], str],
    label: str,
    label_x: float,
) -> list[str]:
    parts = []
    for tick in ticks:
        y = scale(tick)
        parts.append(_line(box.left, y, box.right, y, GRID))
        parts.append(_text(box.left - 6, y, fmt(tick), anchor="end", dy="0.35em"))
    parts.append(_line(box.left, box.top, box.left, box.bottom, AXIS))
    middle = (box.top + box.bottom) / 2
    parts.append(_text(label_x, middle, label, cls="axis-label", anchor="middle", rotate=True))
    return parts


def _x_axis(
    box: _Box,
    scale: _Linear,
    ticks: Sequence[float],
    fmt: Callable[[float], str],
    label: str,
    grid: bool = False,
) -> list[str]:
    parts = [_line(box.left, box.bottom, box.right, box.bottom, AXIS)]
    for tick in ticks:
        x = scale(tick)
        if grid:
            parts.append(_line(x, box.top, x, box.bottom, GRID))
        parts.append(_line(x, box.bottom, x, box.bottom + 4, AXIS))
        parts.append(_text(x, box.bottom + 17, fmt(tick), anchor="middle"))
    middle = (box.left + box.right) / 2
    parts.append(_text(middle, box.bottom + 38, label, cls="axis-label", anchor="middle"))
    return parts


def _x_band_labels(
    box: _Box, centres: Sequence[float], labels: Sequence[str], label: str | None = None
) -> list[str]:
    """Category labels under a band axis, thinned so neighbours never overlap."""
    parts = [_line(box.left, box.bottom, box.right, box.bottom, AXIS)]
    widest = max((_text_width(text) for text in labels), default=10) + 10
    band = box.width / max(len(labels), 1)
    every = max(1, math.ceil(widest / band))
    for i, (x, text) in enumerate(zip(centres, labels, strict=True)):
        if i % every == 0:
            parts.append(_line(x, box.bottom, x, box.bottom + 4, AXIS))
            parts.append(_text(x, box.bottom + 17, text, anchor="middle"))
    if label:
        middle = (box.left + box.right) / 2
        parts.append(_text(middle, box.bottom + 38, label, cls="axis-label", anchor="middle"))
    return parts


def _legend(x: float, y: float, items: Sequence[tuple[str, str, str]]) -> list[str]:
    """One row of legend entries; kind is 'rect', 'line', 'dash', 'dot' or 'tick'."""
    parts = []
    for label, colour, kind in items:
        if kind == "rect":
            parts.append(_rect(x, y - 5, 12, 10, colour))
        elif kind == "line":
            parts.append(_line(x, y, x + 14, y, colour, 2.5))
        elif kind == "dash":
            parts.append(_line(x, y, x + 14, y, colour, 1.5, stroke_dasharray="4 3"))
        elif kind == "tick":
            parts.append(_line(x + 6, y - 6, x + 6, y + 6, colour, 2.5))
        else:
            parts.append(_circle(x + 6, y, 4.5, colour))
        parts.append(_text(x + 19, y, label, cls="legend", dy="0.35em"))
        x += 19 + _text_width(label, 12) + 18
    return parts


def _panel_title(x: float, y: float, text: str) -> str:
    return _text(x, y, text, cls="panel-title")


# ---------------------------------------------------------------------------------------------
# Table access


def _table(ctx: _Context, name: str, columns: Sequence[str]) -> pd.DataFrame:
    frame = ctx.tables.get(name)
    if frame is None:
        raise _Unavailable(f"No data: table {name} was not provided")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise _Unavailable(f"No data: table {name} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise _Unavailable(f"No data: table {name} is empty")
    return frame


def _numeric(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> pd.DataFrame:
    """Coerce columns to float and drop rows where any of them is missing."""
    result = frame.copy()
    for column in columns:
        result[column] = pd.to_numeric(result[column], errors="coerce").astype(float)
    result = result.dropna(subset=list(columns))
    if result.empty:
        raise _Unavailable(f"No data: table {name} has no rows with numeric {', '.join(columns)}")
    return result


def _summary_row(ctx: _Context) -> pd.Series | None:
    frame = ctx.tables.get("rpt_prediction_summary")
    return None if frame is None or frame.empty else frame.iloc[0]


def _ordered_models(models: Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(str(model) for model in models))
    known = [model for model in MODEL_ORDER if model in unique]
    return known + sorted(model for model in unique if model not in MODEL_ORDER)


def _model_colour(model: str, index: int) -> str:
    extra = ("#6a51a3", "#2a9d8f", "#b5651d")
    return MODEL_COLOURS.get(model, extra[index % len(extra)])


def _backtest_metrics(ctx: _Context, required: bool) -> pd.DataFrame | None:
    """Metrics rows of usable models; raises when the backtest did not run at all."""
    frame = ctx.tables.get("rpt_backtest_metrics")
    if frame is None or frame.empty or not {"model", "status"} <= set(frame.columns):
        if required:
            _table(ctx, "rpt_backtest_metrics", ["model", "status"])
        return None
    ok = frame["status"].astype(str) == "ok"
    if not ok.any():
        raise _Unavailable("No backtest: " + _status_reasons(frame))
    return frame[ok]


def _status_reasons(frame: pd.DataFrame) -> str:
    reasons = []
    for _, row in frame.iterrows():
        reason = row.get("status_reason")
        reasons.append(str(row["status"]) if _is_missing(reason) or not str(reason) else reason)
    unique = list(dict.fromkeys(str(reason) for reason in reasons))
    return "; ".join(unique)


# ---------------------------------------------------------------------------------------------
# Charts


def _chart_transactions(ctx: _Context) -> _Chart:
    name = "rpt_transactions_monthly"
    frame = _table(ctx, name, ["month", "transactions", "customers", "revenue"])
    frame = frame.assign(month=pd.to_datetime(frame["month"], errors="coerce"))
    frame = _numeric(frame.dropna(subset=["month"]), name, ["transactions", "customers", "revenue"])
    frame = frame.sort_values("month")
    labels = [f"{month:%b %Y}" for month in frame["month"]]
    upper = _Box(80, 50, WIDTH - 20, 230)
    lower = _Box(80, 320, WIDTH - 20, 480)
    band = upper.width / len(frame)
    centres = [upper.left + band * (i + 0.5) for i in range(len(frame))]

    counts = frame[["transactions", "customers"]].to_numpy()
    ticks = _nice_ticks(0, float(counts.max()))
    y = _Linear(ticks[0], ticks[-1], upper.bottom, upper.top)
    parts = [_panel_title(upper.left, 22, "Transactions and active customers per month")]
    parts += _legend(
        upper.left, 38, [("Transactions", BLUE, "rect"), ("Customers", ORANGE, "line")]
    )
    parts += _y_axis(upper, y, ticks, _tick_formatter(ticks), "Count per month", 18)
    for x, label, row in zip(centres, labels, frame.itertuples(), strict=True):
        tip = f"{label}: {_fmt_int(row.transactions)} transactions"
        parts.append(_rect(x - band * 0.4, y(0), band * 0.8, y(row.transactions) - y(0), BLUE, tip))
    parts.append(_path(zip(centres, (y(v) for v in frame["customers"]), strict=True), ORANGE))
    parts += _x_band_labels(upper, centres, labels)

    revenue = frame["revenue"].to_numpy()
    ticks = _nice_ticks(min(0.0, float(revenue.min())), float(revenue.max()))
    y = _Linear(ticks[0], ticks[-1], lower.bottom, lower.top)
    parts.append(_panel_title(lower.left, 292, f"Net revenue per month ({ctx.currency})"))
    parts += _y_axis(lower, y, ticks, _tick_formatter(ticks), f"Revenue ({ctx.currency})", 18)
    parts.append(_path(zip(centres, (y(v) for v in revenue), strict=True), GREEN))
    for x, label, value in zip(centres, labels, revenue, strict=True):
        parts.append(_circle(x, y(value), 3, GREEN, f"{label}: {_fmt_amount(value)}"))
    parts += _x_band_labels(lower, centres, labels, "Month")
    return _Chart(_svg(530, "Transactions, customers and revenue per month", parts))


def _histogram(
    frame: pd.DataFrame,
    count_column: str,
    x_label: str,
    y_label: str,
    colour: str,
    markers: Sequence[tuple[str, float, str]] = (),
) -> str:
    """Bars spanning [bin_lower, bin_upper); markers are (label, x value, colour) lines."""
    frame = frame.sort_values("bin_lower")
    lower = frame["bin_lower"].to_numpy()
    upper = frame["bin_upper"].to_numpy().copy()
    widths = upper - lower
    typical = float(pd.Series(widths[(widths > 0) & pd.notna(widths)]).median())
    if not math.isfinite(typical):
        typical = 1.0
    # An open-ended last bin (upper = inf or missing) is drawn one typical bin wide.
    upper = [
        u if math.isfinite(u) and u > lo else lo + typical
        for lo, u in zip(lower, upper, strict=True)
    ]
    box = _Box(80, 40 if markers else 20, WIDTH - 20, 290)
    x_ticks = _nice_ticks(float(min(lower)), float(max(upper)), 8)
    x = _Linear(x_ticks[0], x_ticks[-1], box.left, box.right)
    y_ticks = _nice_ticks(0, float(frame[count_column].max()))
    y = _Linear(y_ticks[0], y_ticks[-1], box.bottom, box.top)
    parts = _y_axis(box, y, y_ticks, _tick_formatter(y_ticks), y_label, 18)
    for lo, hi, count in zip(lower, upper, frame[count_column], strict=True):
        tip = f"{_fmt_amount(lo)} – {_fmt_amount(hi)}: {_fmt_int(count)}"
        width = max(x(hi) - x(lo) - 1, 0.5)
        parts.append(_rect(x(lo) + 0.5, y(count), width, y(0) - y(count), colour, tip))
    parts += _x_axis(box, x, x_ticks, _tick_formatter(x_ticks), x_label)
    for _label, value, marker_colour in markers:
        if math.isfinite(value) and x_ticks[0] <= value <= x_ticks[-1]:
            parts.append(
                _line(
                    x(value),
                    box.top,
                    x(value),
                    box.bottom,
                    marker_colour,
                    1.5,
                    stroke_dasharray="4 3",
                )
            )
    if markers:
        parts += _legend(box.left + 10, 16, [(label, c, "dash") for label, _, c in markers])
    return _svg(box.bottom + 50, x_label, parts)


def _chart_order_values(ctx: _Context) -> _Chart:
    name = "rpt_order_value_distribution"
    frame = _table(ctx, name, ["bin_lower", "bin_upper", "orders"])
    frame = _numeric(frame, name, ["bin_lower", "orders"])
    frame["bin_upper"] = pd.to_numeric(frame["bin_upper"], errors="coerce").astype(float)
    label = f"Net order value ({ctx.currency})"
    return _Chart(_histogram(frame, "orders", label, "Orders", BLUE))


def _heat_colour(share: float) -> str:
    """Interpolate the sequential ramp; share is already scaled to 0..1."""
    share = min(max(share, 0.0), 1.0) * (len(HEAT_STOPS) - 1)
    index = min(int(share), len(HEAT_STOPS) - 2)
    frac = share - index
    a, b = HEAT_STOPS[index], HEAT_STOPS[index + 1]
    channels = (
        round(int(a[i : i + 2], 16) * (1 - frac) + int(b[i : i + 2], 16) * frac) for i in (1, 3, 5)
    )
    return "#" + "".join(f"{channel:02x}" for channel in channels)


def _chart_cohorts(ctx: _Context) -> _Chart:
    name = "rpt_cohorts"
    columns = [
        "cohort_month",
        "months_since_first_purchase",
        "active_customers",
        "cohort_customers",
    ]
    frame = _table(ctx, name, columns)
    frame = frame.assign(cohort_month=pd.to_datetime(frame["cohort_month"], errors="coerce"))
    frame = _numeric(frame.dropna(subset=["cohort_month"]), name, columns[1:])
    frame = frame[frame["cohort_customers"] > 0]
    if frame.empty:
        raise _Unavailable(f"No data: table {name} has no cohort with customers")
    frame = frame.assign(share=frame["active_customers"] / frame["cohort_customers"])
    cohorts = sorted(frame["cohort_month"].unique())
    months = sorted(int(m) for m in frame["months_since_first_purchase"].unique())
    later = frame.loc[frame["months_since_first_purchase"] >= 1, "share"]
    # Month 0 is 100% by definition; scaling to the later months keeps them distinguishable.
    top = float(min(1.0, later.max())) if len(later) and later.max() > 0 else 1.0

    cell_h = max(10.0, min(22.0, 440 / len(cohorts)))
    box = _Box(90, 40, WIDTH - 90, 40 + cell_h * len(cohorts))
    cell_w = box.width / len(months)
    row_of = {pd.Timestamp(c): i for i, c in enumerate(cohorts)}
    col_of = {m: i for i, m in enumerate(months)}
    parts = []
    for row in frame.itertuples():
        r, c = row_of[pd.Timestamp(row.cohort_month)], col_of[int(row.months_since_first_purchase)]
        tip = (
            f"{row.cohort_month:%b %Y} cohort, month {int(row.months_since_first_purchase)}: "
            f"{_fmt_int(row.active_customers)} of {_fmt_int(row.cohort_customers)} active "
            f"({_fmt_pct(row.share)})"
        )
        colour = _heat_colour(row.share / top)
        parts.append(
            _rect(box.left + c * cell_w, box.top + r * cell_h, cell_w, cell_h, colour, tip)
        )
        if cell_w >= 34 and cell_h >= 14:
            ink = "#ffffff" if row.share / top > 0.55 else "#222222"
            parts.append(
                _text(
                    box.left + (c + 0.5) * cell_w,
                    box.top + (r + 0.5) * cell_h,
                    f"{row.share * 100:.0f}",
                    cls="cell",
                    anchor="middle",
                    dy="0.35em",
                    fill=ink,
                )
            )
    every = max(1, math.ceil(12 / cell_h))
    for i, cohort in enumerate(cohorts):
        if i % every == 0:
            y = box.top + (i + 0.5) * cell_h
            parts.append(
                _text(box.left - 6, y, f"{pd.Timestamp(cohort):%b %Y}", anchor="end", dy="0.35em")
            )
    centres = [box.left + (i + 0.5) * cell_w for i in range(len(months))]
    parts += _x_band_labels(box, centres, [str(m) for m in months], "Months since first purchase")
    parts.append(_text(box.left, 24, "Cohort (month of first purchase)", cls="axis-label"))
    legend, defs = _heat_legend(box, top)
    parts += legend
    return _Chart(_svg(box.bottom + 50, "Cohort activity heat map", parts, defs))


def _heat_legend(box: _Box, top: float) -> tuple[list[str], str]:
    stops = "".join(
        f'<stop offset="{i / (len(HEAT_STOPS) - 1):.2f}" stop-color="{colour}"/>'
        for i, colour in enumerate(HEAT_STOPS)
    )
    # Vertical gradient: top of the bar is the highest share.
    defs = f'<linearGradient id="heat-ramp" x1="0" y1="1" x2="0" y2="0">{stops}</linearGradient>'
    x0, height = box.right + 20, min(200.0, box.height)
    parts = [
        _text(x0 - 4, box.top - 14, "Active share", cls="legend"),
        f'<rect x="{_num(x0)}" y="{_num(box.top)}" width="14" height="{_num(height)}" '
        f'fill="url(#heat-ramp)" stroke="{AXIS}" stroke-width="0.5"/>',
    ]
    scale = _Linear(0, top, box.top + height, box.top)
    ticks = _nice_ticks(0, top, 4)
    fmt = _tick_formatter(ticks, percent=True)
    if top < 1:
        # The top of the ramp means "this share or more"; ticks too close to it would collide.
        ticks = [t for t in ticks if scale(t) - scale(top) > 14]
        parts.append(_line(x0 + 14, scale(top), x0 + 18, scale(top), AXIS))
        parts.append(_text(x0 + 21, scale(top), f"≥{top * 100:.0f}%", dy="0.35em"))
    for tick in ticks:
        parts.append(_line(x0 + 14, scale(tick), x0 + 18, scale(tick), AXIS))
        parts.append(_text(x0 + 21, scale(tick), fmt(tick), dy="0.35em"))
    return parts, defs


def _chart_forecast_distribution(ctx: _Context) -> _Chart:
    name = "rpt_forecast_distribution"
    frame = _table(ctx, name, ["bin_lower", "bin_upper", "customers"])
    frame = _numeric(frame, name, ["bin_lower", "customers"])
    frame["bin_upper"] = pd.to_numeric(frame["bin_upper"], errors="coerce").astype(float)
    summary = _summary_row(ctx)
    markers: list[tuple[str, float, str]] = []
    horizon = ""
    if summary is not None:
        for label, key, colour in (
            ("Mean", "mean_expected_spend", RED),
            ("Median", "median_expected_spend", GREEN),
        ):
            value = pd.to_numeric(summary.get(key), errors="coerce")
            if not _is_missing(value):
                markers.append((f"{label} {_fmt_amount(value)}", float(value), colour))
        if not _is_missing(summary.get("horizon_days")):
            horizon = f" over the next {_fmt_int(summary.get('horizon_days'))} days"
    label = f"Expected spend per customer{horizon} ({ctx.currency})"
    return _Chart(_histogram(frame, "customers", label, "Customers", BLUE, markers))


def _chart_forecast_intervals(ctx: _Context) -> _Chart:
    name = "rpt_top_customers"
    numbers = ["expected_spend", "spend_p10", "spend_p50", "spend_p90"]
    frame = _table(ctx, name, ["customer_id", *numbers])
    frame = _numeric(frame, name, numbers).sort_values("expected_spend", ascending=False).head(20)
    labels = [_truncate(str(c), 18) for c in frame["customer_id"]]
    left = 24 + max(_text_width(label) for label in labels)
    row_h = 20.0
    box = _Box(left, 40, WIDTH - 80, 40 + row_h * len(frame))
    high = float(frame[numbers].to_numpy().max())
    ticks = _nice_ticks(min(0.0, float(frame[numbers].to_numpy().min())), high, 6)
    x = _Linear(ticks[0], ticks[-1], box.left, box.right)
    parts = _legend(
        box.left,
        16,
        [
            ("p10–p90 interval", "#a9c4e8", "rect"),
            ("p50 (median)", "#1d3f73", "tick"),
            ("Expected spend", ORANGE, "dot"),
        ],
    )
    for tick in ticks:
        parts.append(_line(x(tick), box.top, x(tick), box.bottom, GRID))
    parts.append(_text(box.right + 8, box.top - 8, "P(buy)", cls="legend"))
    has_prob = "prob_purchase" in frame.columns
    for i, (label, row) in enumerate(zip(labels, frame.itertuples(), strict=True)):
        y = box.top + (i + 0.5) * row_h
        tip = (
            f"{row.customer_id}: expected {_fmt_amount(row.expected_spend)}, "
            f"p10 {_fmt_amount(row.spend_p10)}, p50 {_fmt_amount(row.spend_p50)}, "
            f"p90 {_fmt_amount(row.spend_p90)}"
        )
        parts.append(_text(box.left - 8, y, label, anchor="end", dy="0.35em"))
        parts.append(
            _rect(x(row.spend_p10), y - 5, x(row.spend_p90) - x(row.spend_p10), 10, "#a9c4e8", tip)
        )
        parts.append(_line(x(row.spend_p50), y - 7, x(row.spend_p50), y + 7, "#1d3f73", 2.5))
        parts.append(_circle(x(row.expected_spend), y, 4.5, ORANGE, tip))
        if has_prob:
            parts.append(_text(box.right + 8, y, _fmt_pct(row.prob_purchase, 0), dy="0.35em"))
    label = f"Spend over the forecast horizon ({ctx.currency})"
    parts += _x_axis(box, x, ticks, _tick_formatter(ticks), label)
    return _Chart(_svg(box.bottom + 50, "Forecast intervals of the top customers", parts))


def _chart_decile_calibration(ctx: _Context) -> _Chart:
    metrics = _backtest_metrics(ctx, required=False)
    name = "rpt_backtest_deciles"
    frame = _table(ctx, name, ["model", "decile", "mean_forecast", "mean_actual"])
    frame = _numeric(frame, name, ["decile", "mean_forecast", "mean_actual"])
    if metrics is not None:
        frame = frame[frame["model"].astype(str).isin(set(metrics["model"].astype(str)))]
    models = _ordered_models(frame["model"].astype(str))
    if not models:
        raise _Unavailable("No data: no model with status ok has decile results")
    values = frame[["mean_forecast", "mean_actual"]].to_numpy()
    ticks = _nice_ticks(min(0.0, float(values.min())), float(values.max()))
    gap = 30.0
    panel_w = (WIDTH - 80 - 20 - gap * (len(models) - 1)) / len(models)
    parts = _legend(80, 16, [("Mean forecast", BLUE, "rect"), ("Mean actual", ORANGE, "rect")])
    for index, model in enumerate(models):
        left = 80 + index * (panel_w + gap)
        box = _Box(left, 54, left + panel_w, 290)
        y = _Linear(ticks[0], ticks[-1], box.bottom, box.top)
        rows = frame[frame["model"].astype(str) == model].sort_values("decile")
        parts.append(_panel_title(box.left, 44, model))
        if index == 0:
            label = f"Mean spend per customer ({ctx.currency})"
            parts += _y_axis(box, y, ticks, _tick_formatter(ticks), label, 18)
        else:
            parts += [_line(box.left, y(t), box.right, y(t), GRID) for t in ticks]
        band = box.width / len(rows)
        centres = [box.left + band * (i + 0.5) for i in range(len(rows))]
        for centre, row in zip(centres, rows.itertuples(), strict=True):
            tip = (
                f"{model}, decile {int(row.decile)}: forecast {_fmt_amount(row.mean_forecast)},"
                f" actual {_fmt_amount(row.mean_actual)}"
            )
            w = band * 0.4
            parts.append(
                _rect(centre - w, y(row.mean_forecast), w, y(0) - y(row.mean_forecast), BLUE, tip)
            )
            parts.append(
                _rect(centre, y(row.mean_actual), w, y(0) - y(row.mean_actual), ORANGE, tip)
            )
        labels = [str(int(d)) for d in rows["decile"]]
        parts += _x_band_labels(box, centres, labels, "Decile (1 = highest forecast)")
    return _Chart(_svg(340, "Forecast versus actual spend per decile", parts))


def _quantile_levels(columns: Iterable[str]) -> list[tuple[str, float]]:
    """(suffix, level in 0..1) for every below_rate_p<suffix> column; '2_5' means 2.5%."""
    levels = []
    for column in columns:
        match = re.fullmatch(r"below_rate_p(.+)", str(column))
        if match:
            try:
                levels.append((match.group(1), float(match.group(1).replace("_", ".")) / 100))
            except ValueError:
                continue
    return sorted(levels, key=lambda item: item[1])


def _chart_interval_coverage(ctx: _Context) -> _Chart:
    metrics = _backtest_metrics(ctx, required=True)
    assert metrics is not None  # required=True raises instead of returning None
    levels = _quantile_levels(metrics.columns)
    if not levels:
        raise _Unavailable("No data: rpt_backtest_metrics has no below_rate_p* columns")
    below_cols = [f"below_rate_p{suffix}" for suffix, _ in levels]
    usable = metrics[metrics[below_cols].apply(pd.to_numeric, errors="coerce").notna().any(axis=1)]
    if usable.empty:
        raise _Unavailable("No data: no backtested model reports quantile hit rates")
    models = _ordered_models(usable["model"].astype(str))
    row = usable[usable["model"].astype(str) == models[0]].iloc[0]

    box = _Box(80, 44, WIDTH - 240, 330)
    scale_x = _Linear(0, 1, box.left, box.right)
    scale_y = _Linear(0, 1, box.bottom, box.top)
    ticks = [i / 10 for i in range(11)]
    fmt = _tick_formatter(ticks, percent=True)
    parts = _y_axis(box, scale_y, ticks, fmt, "Customers with actual below quantile", 18)
    parts += _x_axis(box, scale_x, ticks, fmt, f"Quantile level ({models[0]})", grid=True)
    parts.append(
        _line(scale_x(0), scale_y(0), scale_x(1), scale_y(1), GREY, 1.5, stroke_dasharray="5 4")
    )
    for suffix, level in levels:
        below = pd.to_numeric(row.get(f"below_rate_p{suffix}"), errors="coerce")
        at_or_below = pd.to_numeric(row.get(f"at_or_below_rate_p{suffix}"), errors="coerce")
        if _is_missing(below):
            continue
        top_rate = below if _is_missing(at_or_below) else at_or_below
        calibrated = below - 1e-9 <= level <= top_rate + 1e-9
        colour = GREEN if calibrated else RED
        x = scale_x(level)
        tip = (
            f"p{suffix.replace('_', '.')}: P(actual<q) {_fmt_pct(below)}, "
            f"P(actual≤q) {_fmt_pct(at_or_below)}, target {_fmt_pct(level)}"
        )
        parts.append(_line(x, scale_y(below), x, scale_y(top_rate), colour, 3))
        # The target tick keeps the verdict visible when both rates coincide.
        parts.append(_line(x - 7, scale_y(level), x + 7, scale_y(level), colour, 2.5))
        parts.append(_circle(x, scale_y(below), 4.5, "#ffffff", tip, stroke=BLUE, stroke_width=2))
        parts.append(_circle(x, scale_y(top_rate), 4.5, BLUE, tip))
        parts.append(
            _text(
                x,
                min(scale_y(top_rate), scale_y(level)) - 12,
                f"p{suffix.replace('_', '.')}",
                "legend",
                "middle",
            )
        )
    parts += _coverage_legend(box.right + 24, box.top + 10)
    return _Chart(_svg(box.bottom + 50, "Quantile hit rates versus target levels", parts))


def _coverage_legend(x: float, y: float) -> list[str]:
    rows = [
        (_circle(x + 6, y, 4.5, "#ffffff", stroke=BLUE, stroke_width=2), "P(actual < quantile)"),
        (_circle(x + 6, y + 24, 4.5, BLUE), "P(actual ≤ quantile)"),
        (_line(x, y + 48, x + 14, y + 48, GREY, 1.5, stroke_dasharray="5 4"), "Target (y = x)"),
        (_line(x + 6, y + 66, x + 6, y + 78, GREEN, 3), "Calibrated: target in range"),
        (_line(x + 6, y + 90, x + 6, y + 102, RED, 3), "Miscalibrated"),
    ]
    offsets = (0, 24, 48, 72, 96)
    return [
        mark + _text(x + 20, y + offset, label, cls="legend", dy="0.35em")
        for (mark, label), offset in zip(rows, offsets, strict=True)
    ]


BASELINE_METRICS = (
    ("mae_expected_spend", "MAE of expected spend (lower is better)", "amount"),
    ("normalized_gini", "Normalized Gini (higher is better)", "plain"),
    ("top_decile_capture", "Top-decile capture (higher is better)", "percent"),
    ("total_error_pct", "Total error, % of actual (0 is best)", "plain"),
)


def _chart_baselines(ctx: _Context) -> _Chart:
    metrics = _backtest_metrics(ctx, required=True)
    assert metrics is not None
    all_rows = ctx.tables["rpt_backtest_metrics"]
    models = _ordered_models(metrics["model"].astype(str))
    colours = {model: _model_colour(model, i) for i, model in enumerate(models)}
    parts = _legend(80, 16, [(model, colours[model], "rect") for model in models])
    panel_w, panel_h = (WIDTH - 2 * 80 - 20) / 2, 170.0
    for index, (column, title, kind) in enumerate(BASELINE_METRICS):
        left = 80 + (index % 2) * (panel_w + 80)
        top = 62 + (index // 2) * (panel_h + 80)
        box = _Box(left, top, left + panel_w, top + panel_h)
        label = f"{title}"
        if column == "mae_expected_spend":
            label = f"MAE ({ctx.currency}, lower is better)"
        parts.append(_panel_title(box.left, box.top - 14, label))
        parts += _metric_panel(box, metrics, models, colours, column, kind)
    extra = _metrics_table(all_rows)
    return _Chart(_svg(62 + 2 * panel_h + 110, "Model versus baselines", parts), extra)


def _metric_panel(
    box: _Box,
    metrics: pd.DataFrame,
    models: Sequence[str],
    colours: Mapping[str, str],
    column: str,
    kind: str,
) -> list[str]:
    if column not in metrics.columns:
        return [_text(box.left + 10, box.top + 30, f"column {column} missing", cls="legend")]
    by_model = metrics.set_index(metrics["model"].astype(str))[column]
    values = {m: float(pd.to_numeric(by_model.get(m), errors="coerce")) for m in models}
    finite = [v for v in values.values() if math.isfinite(v)]
    # Headroom so the value printed above (or below) the tallest bar stays inside the panel.
    ticks = _nice_ticks(min([0.0, *finite]) * 1.12, max([0.0, *finite]) * 1.12, 4)
    y = _Linear(ticks[0], ticks[-1], box.bottom, box.top)
    fmt = _tick_formatter(ticks, percent=kind == "percent")
    parts = _y_axis(box, y, ticks, fmt, "", box.left - 60)
    parts.append(_line(box.left, y(0), box.right, y(0), AXIS))
    band = box.width / len(models)
    bar = min(band * 0.6, 70.0)
    for i, model in enumerate(models):
        centre, value = box.left + band * (i + 0.5), values[model]
        parts.append(_text(centre, box.bottom + 16, model, anchor="middle"))
        if not math.isfinite(value):
            parts.append(_text(centre, y(0) - 6, "n/a", anchor="middle"))
            continue
        shown = _fmt_pct(value) if kind == "percent" else f"{value:,.3g}"
        parts.append(
            _rect(
                centre - bar / 2,
                y(value),
                bar,
                y(0) - y(value),
                colours[model],
                f"{model}: {shown}",
            )
        )
        label_y = y(value) - 5 if value >= 0 else y(value) + 13
        parts.append(_text(centre, label_y, shown, cls="value", anchor="middle"))
    return parts


def _metrics_table(frame: pd.DataFrame) -> str:
    models = _ordered_models(frame["model"].astype(str))
    rows = frame.set_index(frame["model"].astype(str))
    head = "".join(f"<th>{_esc(model)}</th>" for model in models)
    body = []
    for column in (c for c in frame.columns if c != "model"):
        cells = "".join(f"<td>{_esc(_fmt_value(rows.at[m, column]))}</td>" for m in models)
        body.append(f"<tr><th>{_esc(column)}</th>{cells}</tr>")
    return (
        '<table class="metrics"><caption>All backtest metrics</caption>'
        f"<thead><tr><th>metric</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _horizontal_bars(
    labels: Sequence[str],
    values: Sequence[float],
    value_text: Sequence[str],
    colours: Sequence[str],
    x_label: str,
    percent: bool = False,
) -> str:
    """Labelled horizontal bars with the value printed at each bar's end."""
    shown = [_truncate(label, 34) for label in labels]
    left = 24 + max(_text_width(label) for label in shown)
    widest_value = max(_text_width(text) for text in value_text)
    row_h = 22.0
    box = _Box(left, 14, WIDTH - 20 - widest_value, 14 + row_h * len(labels))
    ticks = _nice_ticks(0, max(values), 5)
    x = _Linear(0, ticks[-1], box.left, box.right)
    parts = [_line(x(t), box.top, x(t), box.bottom, GRID) for t in ticks]
    for i, (full, label, value, text, colour) in enumerate(
        zip(labels, shown, values, value_text, colours, strict=True)
    ):
        y = box.top + (i + 0.5) * row_h
        parts.append(_text(box.left - 8, y, label, anchor="end", dy="0.35em"))
        width = max(x(value) - x(0), 1.0)  # a sliver stays visible for tiny counts
        parts.append(_rect(box.left, y - 7, width, 14, colour, f"{full}: {text}"))
        parts.append(_text(box.left + width + 5, y, text, cls="value", dy="0.35em"))
    parts += _x_axis(box, x, ticks, _tick_formatter(ticks, percent=percent), x_label)
    return _svg(box.bottom + 50, x_label, parts)


def _chart_reliability(ctx: _Context) -> _Chart:
    metrics = _backtest_metrics(ctx, required=False)
    name = "rpt_backtest_reliability"
    frame = _table(ctx, name, ["model", "bin", "customers", "mean_prob_purchase"])
    frame = _numeric(
        frame, name, ["bin", "customers", "mean_prob_purchase", "observed_purchase_rate"]
    )
    frame = frame[frame["customers"] > 0]
    if metrics is not None:
        frame = frame[frame["model"].astype(str).isin(set(metrics["model"].astype(str)))]
    models = _ordered_models(frame["model"].astype(str))
    if not models:
        raise _Unavailable("No data: no model with status ok has reliability bins")
    brier = {}
    if metrics is not None and "brier_prob_purchase" in metrics:
        brier = dict(zip(metrics["model"].astype(str), metrics["brier_prob_purchase"], strict=True))
    box = _Box(80, 50, WIDTH - 260, 400)
    x = _Linear(0.0, 1.0, box.left, box.right)
    y = _Linear(0.0, 1.0, box.bottom, box.top)
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    share = _tick_formatter(ticks, percent=True)
    parts = _y_axis(box, y, ticks, share, "Observed purchase rate", 18)
    parts += _x_axis(box, x, ticks, share, "Predicted P(purchase), mean per bin", grid=True)
    parts.append(_line(x(0), y(0), x(1), y(1), AXIS, 1, stroke_dasharray="4 3"))
    legend_y = 60.0
    for index, model in enumerate(models):
        colour = _model_colour(model, index)
        rows = frame[frame["model"].astype(str) == model].sort_values("bin")
        points = list(zip(rows["mean_prob_purchase"], rows["observed_purchase_rate"], strict=True))
        parts.append(_path(((x(p), y(o)) for p, o in points), colour))
        for row in rows.itertuples():
            tip = (
                f"{model}, bin {int(row.bin)}: predicted {_fmt_pct(row.mean_prob_purchase)}, "
                f"observed {_fmt_pct(row.observed_purchase_rate)}, "
                f"{_fmt_int(row.customers)} customers"
            )
            radius = 2.5 + 4.5 * math.sqrt(row.customers / frame["customers"].max())
            parts.append(
                _circle(
                    x(row.mean_prob_purchase), y(row.observed_purchase_rate), radius, colour, tip
                )
            )
        score = brier.get(model)
        label = model if _is_missing(score) else f"{model}: Brier {float(score):.4f}"
        parts += _legend(box.right + 24, legend_y, [(label, colour, "dot")])
        legend_y += 22
    parts += _legend(box.right + 24, legend_y, [("perfectly calibrated", AXIS, "dash")])
    return _Chart(_svg(450, "Predicted against observed purchase rate", parts))


# Level colours for the accuracy chart's hit rates, lowest level first.
LEVEL_COLOURS = (BLUE, GREEN, ORANGE, RED, GREY)


def _chart_accuracy_over_time(ctx: _Context) -> _Chart:
    name = "rpt_forecast_accuracy_over_time"
    frame = ctx.tables.get(name)
    if frame is None:
        raise _Unavailable(f"No data: table {name} was not provided")
    if len(frame) < 2:
        raise _Unavailable(
            f"Not yet: {len(frame)} scoring run(s) with a horizon that has passed; the chart "
            "appears once two runs' horizons have passed and their actual spend is known"
        )
    levels = _quantile_levels(frame.columns)
    frame = _numeric(
        frame.assign(as_of_date=pd.to_datetime(frame["as_of_date"], errors="coerce")),
        name,
        ["total_forecast", "total_actual", *[f"at_or_below_rate_p{s}" for s, _ in levels]],
    ).sort_values("as_of_date")
    labels = [f"{day:%Y-%m-%d}" for day in frame["as_of_date"]]
    upper = _Box(80, 50, WIDTH - 20, 230)
    lower = _Box(80, 320, WIDTH - 20, 480)
    band = upper.width / len(frame)
    centres = [upper.left + band * (i + 0.5) for i in range(len(frame))]

    y = _Linear(0.0, 1.0, upper.bottom, upper.top)
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    title = "Each quantile's P(actual < q) to P(actual <= q), per run"
    parts = [_panel_title(upper.left, 22, title)]
    colours = [LEVEL_COLOURS[i % len(LEVEL_COLOURS)] for i in range(len(levels))]
    parts += _legend(
        upper.left,
        38,
        [(f"p{s.replace('_', '.')}", c, "line") for (s, _), c in zip(levels, colours, strict=True)],
    )
    share = _tick_formatter(ticks, percent=True)
    parts += _y_axis(upper, y, ticks, share, "Share of customers", 18)
    for index, ((suffix, level), colour) in enumerate(zip(levels, colours, strict=True)):
        parts.append(
            _line(upper.left, y(level), upper.right, y(level), colour, 1, stroke_dasharray="4 3")
        )
        offset = (index - (len(levels) - 1) / 2) * 10
        for x, label, row in zip(centres, labels, frame.itertuples(index=False), strict=True):
            below = getattr(row, f"below_rate_p{suffix}", None)
            at_or_below = getattr(row, f"at_or_below_rate_p{suffix}")
            low = at_or_below if _is_missing(below) else float(below)
            tip = (
                f"{label}: p{suffix.replace('_', '.')} has P(actual<q) {_fmt_pct(low)}, "
                f"P(actual<=q) {_fmt_pct(at_or_below)}, level {_fmt_pct(level)}"
            )
            parts.append(_line(x + offset, y(low), x + offset, y(at_or_below), colour, 5))
            parts.append(_circle(x + offset, y(at_or_below), 3.5, colour, tip))
    parts += _x_band_labels(upper, centres, labels)

    totals = frame[["total_forecast", "total_actual"]].to_numpy()
    ticks = _nice_ticks(min(0.0, float(totals.min())), float(totals.max()))
    y = _Linear(ticks[0], ticks[-1], lower.bottom, lower.top)
    parts.append(_panel_title(lower.left, 292, f"Total forecast and actual spend ({ctx.currency})"))
    parts += _legend(lower.left, 306, [("Forecast", BLUE, "rect"), ("Actual", ORANGE, "rect")])
    parts += _y_axis(lower, y, ticks, _tick_formatter(ticks), f"Spend ({ctx.currency})", 18)
    for x, label, (forecast, actual) in zip(centres, labels, totals, strict=True):
        for offset, value, colour, what in (
            (-0.4, forecast, BLUE, "forecast"),
            (0.0, actual, ORANGE, "actual"),
        ):
            tip = f"{label}: {what} {_fmt_amount(value)}"
            parts.append(_rect(x + band * offset, y(0), band * 0.4, y(value) - y(0), colour, tip))
    parts += _x_band_labels(lower, centres, labels, "Scoring run (as_of_date)")
    return _Chart(_svg(530, "Forecast accuracy of past scoring runs", parts))


def _chart_feature_importance(ctx: _Context) -> _Chart:
    name = "rpt_feature_importance"
    frame = _table(ctx, name, ["target", "feature", "gain", "gain_share"])
    frame = _numeric(frame, name, ["gain_share"])
    targets = frame["target"].astype(str)
    target = IMPORTANCE_TARGET if (targets == IMPORTANCE_TARGET).any() else sorted(targets)[0]
    top = frame[targets == target].sort_values("gain_share", ascending=False).head(TOP_FEATURES)
    shares = [float(v) for v in top["gain_share"]]
    svg = _horizontal_bars(
        [str(f) for f in top["feature"]],
        shares,
        [_fmt_pct(v) for v in shares],
        [BLUE] * len(top),
        f"Share of total split gain (booster: {target})",
        percent=True,
    )
    return _Chart(svg)


def _chart_data_quality(ctx: _Context) -> _Chart:
    name = "rpt_data_quality"
    frame = _table(ctx, name, ["category", "rejection_reason", "rows"])
    frame = _numeric(frame, name, ["rows"])
    category = frame["category"].astype(str).str.lower()
    raw = float(frame.loc[category == "raw", "rows"].sum())
    valid = float(frame.loc[category == "valid", "rows"].sum())
    rejected = frame[category == "rejected"]
    reasons = (
        rejected.assign(
            reason=rejected["rejection_reason"].map(
                lambda r: "unspecified" if _is_missing(r) or not str(r) else str(r)
            )
        )
        .groupby("reason")["rows"]
        .sum()
        .sort_values(ascending=False)
    )
    rejected_total = float(reasons.sum())
    base = raw or (valid + rejected_total) or 1.0
    labels = ["valid", *(f"rejected: {reason}" for reason in reasons.index)]
    values = [valid, *(float(v) for v in reasons.to_numpy())]
    texts = [f"{_fmt_int(v)} ({_fmt_pct(v / base, 2)})" for v in values]
    colours = [GREEN] + [RED] * len(reasons)
    svg = _horizontal_bars(labels, values, texts, colours, "Rows")
    return _Chart(svg, _quality_numbers(raw, valid, rejected_total, (category == "raw").any()))


def _quality_numbers(raw: float, valid: float, rejected: float, has_raw: bool) -> str:
    if not has_raw:
        check = "no raw row count reported"
    elif raw == valid + rejected:
        check = "raw = valid + rejected ✓"
    else:
        check = f"⚠ raw ({_fmt_int(raw)}) ≠ valid + rejected ({_fmt_int(valid + rejected)})"
    cells = (
        ("Raw rows", _fmt_int(raw) if has_raw else "–"),
        ("Valid", _fmt_int(valid)),
        ("Rejected", _fmt_int(rejected)),
        ("Check", check),
    )
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in cells)
    return f'<table class="metrics quality">{body}</table>'


# ---------------------------------------------------------------------------------------------
# Page


@dataclass(frozen=True)
class _Spec:
    title: str
    caption: str
    build: Callable[[_Context], _Chart]


def _specs(currency: str) -> dict[str, _Spec]:
    return {
        "transactions-over-time": _Spec(
            "Transactions over time",
            "Monthly transaction and distinct-customer counts (top) and net revenue (bottom). "
            "Seasonality and growth here are what the forecast has to extrapolate.",
            _chart_transactions,
        ),
        "order-values": _Spec(
            "Order values",
            f"Histogram of net order value in {currency}. A long right tail means a few large "
            "orders carry much of the revenue.",
            _chart_order_values,
        ),
        "cohorts": _Spec(
            "Cohort activity",
            "Each row is the cohort of customers whose first purchase fell in that month; each "
            "cell the share of them who bought again N months later (hover a cell for counts). "
            "Month 0 is 100% by definition, so the colour scale tops out at the highest later "
            "share to keep repeat behaviour visible.",
            _chart_cohorts,
        ),
        "forecast-distribution": _Spec(
            "Forecast distribution",
            f"Number of customers per band of expected spend ({currency}) over the forecast "
            "horizon; dashed lines mark the mean and median.",
            _chart_forecast_distribution,
        ),
        "forecast-intervals": _Spec(
            "Top customers: forecast intervals",
            "The customers with the highest expected spend. Bars span the p10 to p90 spend "
            "quantiles (80% interval), the dark tick is the median and the dot the expected "
            "value; the right column is the probability of any purchase in the horizon.",
            _chart_forecast_intervals,
        ),
        "decile-calibration": _Spec(
            "Decile calibration (backtest)",
            "Customers are ranked by forecast and split into ten equal groups; per group the "
            "mean forecast is compared with the mean spend actually observed. Well calibrated "
            "models have bars of equal height, and steeply falling bars mean good ranking.",
            _chart_decile_calibration,
        ),
        "interval-coverage": _Spec(
            "Quantile calibration (backtest)",
            "For each predicted spend quantile, the share of customers whose actual spend fell "
            "strictly below it and at or below it. Many customers spend exactly 0, so the two "
            "differ; a quantile is calibrated when its target level lies between them (green).",
            _chart_interval_coverage,
        ),
        "baselines-vs-model": _Spec(
            "Model versus baselines (backtest)",
            "Backtest metrics of the LightGBM model against the BTYD and naive baselines on the "
            "same customers and horizon; total error is summed forecast minus summed actual. "
            "Models whose backtest did not run are listed in the table only.",
            _chart_baselines,
        ),
        "purchase-reliability": _Spec(
            "Purchase probability: predicted against observed (backtest)",
            "Customers binned by their predicted probability of buying in the horizon "
            "(rpt_backtest_reliability, ten bins of 0.1); each dot is a bin's mean prediction "
            "against the share that actually bought, sized by its customers. A calibrated "
            "probability keeps to the dashed diagonal; the Brier score (lower is better) "
            "sums up both calibration and sharpness.",
            _chart_reliability,
        ),
        "accuracy-over-time": _Spec(
            "Forecast accuracy over time (production runs)",
            "Every scoring run whose horizon has passed, judged against what its customers "
            "then spent (rpt_forecast_accuracy_over_time). Top: for each quantile, a bar from "
            "the share of customers below it to the share at or below it (many spend exactly "
            "0, so the two differ); the quantile is honest in a run when its dashed level "
            "crosses its bar. Bottom: each run's total forecast beside the total actually spent.",
            _chart_accuracy_over_time,
        ),
        "feature-importance": _Spec(
            "Feature importance",
            f"Top {TOP_FEATURES} features of the purchase-probability booster by share of total "
            "split gain: how much each feature reduced the training loss.",
            _chart_feature_importance,
        ),
        "data-quality": _Spec(
            "Data quality",
            "Input transaction rows that passed validation and those rejected, by reason, with "
            "the share of all raw rows.",
            _chart_data_quality,
        ),
    }


def _figure(chart_id: str, spec: _Spec, ctx: _Context) -> str:
    try:
        chart = spec.build(ctx)
        body = chart.svg + chart.extra_html
    except _Unavailable as unavailable:
        body = f'<p class="no-data">{_esc(unavailable)}</p>'
    return (
        f'<figure class="chart" id="chart-{chart_id}"><h3>{_esc(spec.title)}</h3>{body}'
        f"<figcaption>{_esc(spec.caption)}</figcaption></figure>"
    )


def _summary_cards(ctx: _Context) -> str:
    summary = _summary_row(ctx)
    if summary is None:
        return '<p class="no-data">No data: table rpt_prediction_summary is missing or empty</p>'
    money = f" {ctx.currency}"
    cards = [
        ("Customers scored", _fmt_int(summary.get("customers"))),
        ("Total expected spend", _fmt_amount(summary.get("total_expected_spend")) + money),
        (
            "Mean / median per customer",
            f"{_fmt_amount(summary.get('mean_expected_spend'))} / "
            f"{_fmt_amount(summary.get('median_expected_spend'))}",
        ),
        (
            "Mean p10 · p50 · p90",
            " · ".join(_fmt_amount(summary.get(f"mean_spend_p{q}")) for q in (10, 50, 90)),
        ),
        ("Mean purchase probability", _fmt_pct(summary.get("mean_prob_purchase"))),
        ("Forecast as of", _fmt_date(summary.get("as_of_date"))),
        ("Horizon", f"{_fmt_int(summary.get('horizon_days'))} days"),
        ("Model version", _fmt_value(summary.get("model_version"))),
    ]
    items = "".join(
        f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div></div>'
        for k, v in cards
    )
    return f'<div class="cards">{items}</div>{_backtest_banner(ctx)}'


def _backtest_banner(ctx: _Context) -> str:
    try:
        metrics = _backtest_metrics(ctx, required=False)
    except _Unavailable as unavailable:
        return f'<p class="no-data">{_esc(unavailable)}</p>'
    if metrics is None:
        return ""
    lightgbm = metrics[metrics["model"].astype(str) == "lightgbm"]
    if lightgbm.empty:
        return ""
    row = lightgbm.iloc[0]
    facts = [f"as of {_fmt_date(row.get('backtest_as_of_date'))}"]
    for key, label in (("normalized_gini", "normalized Gini"), ("spearman", "Spearman")):
        if not _is_missing(row.get(key)):
            facts.append(f"{label} {_fmt_value(row.get(key))}")
    if not _is_missing(row.get("total_error_pct")):
        facts.append(f"total error {float(row.get('total_error_pct')):.1f}%")
    return f'<p class="banner">Backtest of the LightGBM model: {_esc(", ".join(facts))}.</p>'


STYLE = """
:root{color-scheme:light}
body{margin:0;background:#f4f5f7;color:#1f2328;font:15px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:900px;margin:0 auto;padding:24px 20px 60px}
h1{font-size:28px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 10px}
h3{font-size:17px;margin:0 0 8px}
.meta{color:#57606a;margin:0 0 18px}
nav{font-size:13px;margin:0 0 18px}nav a{color:#3b6fb6;margin-right:12px;white-space:nowrap}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.card{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:10px 12px}
.card .k{font-size:12px;color:#57606a}.card .v{font-size:18px;font-weight:600;
overflow-wrap:anywhere}
.banner{background:#eef4fb;border-left:4px solid #3b6fb6;padding:8px 12px;margin:14px 0 0}
figure.chart{background:#fff;border:1px solid #d8dee4;border-radius:8px;margin:0 0 18px;
padding:16px 18px 12px}
figure.chart svg{display:block;width:100%;height:auto;font-family:inherit}
figcaption{font-size:13px;color:#57606a;margin-top:8px}
.no-data{background:#fff5e0;border:1px solid #e3b341;border-radius:6px;padding:14px 16px;
font-weight:600;color:#7a4d00;margin:10px 0}
text.tick{font-size:11px;fill:#57606a}text.axis-label{font-size:12.5px;fill:#1f2328}
text.legend{font-size:12px;fill:#1f2328}text.value{font-size:11px;fill:#1f2328}
text.panel-title{font-size:13.5px;font-weight:600;fill:#1f2328}text.cell{font-size:10px}
table.metrics{border-collapse:collapse;font-size:12.5px;margin-top:12px;width:100%}
table.metrics caption{text-align:left;font-weight:600;margin-bottom:4px}
table.metrics th,table.metrics td{border-bottom:1px solid #e3e3e3;padding:3px 8px;
text-align:right;font-variant-numeric:tabular-nums}
table.metrics th:first-child{text-align:left;font-weight:500;color:#57606a}
table.quality{width:auto}
@media (max-width:700px){.cards{grid-template-columns:repeat(2,1fr)}}
"""

SECTIONS = (
    ("Data", CHARTS[:3]),
    ("Forecast", CHARTS[3:5]),
    ("Backtest", CHARTS[5:9]),
    ("Production forecasts", CHARTS[9:10]),
    ("Model", CHARTS[10:11]),
    ("Data quality", CHARTS[11:]),
)


def render_report(
    tables: Mapping[str, pd.DataFrame],
    *,
    title: str = "Customer value forecast",
    currency: str = "currency units",
    generated_at: datetime | None = None,
) -> str:
    """The whole report as one HTML document; tables are keyed by rpt_* model name."""
    ctx = _Context(tables, currency)
    specs = _specs(currency)
    stamp = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M %Z").strip()
    nav = " ".join(f'<a href="#chart-{c}">{_esc(specs[c].title)}</a>' for c in CHARTS)
    sections = "".join(
        f"<section><h2>{_esc(heading)}</h2>"
        + "".join(_figure(chart_id, specs[chart_id], ctx) for chart_id in chart_ids)
        + "</section>"
        for heading, chart_ids in SECTIONS
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body><main>"
        f'<h1>{_esc(title)}</h1><p class="meta">Generated {_esc(stamp)} · amounts in '
        f"{_esc(currency)}</p><nav>{nav}</nav>{_summary_cards(ctx)}{sections}"
        "</main></body></html>\n"
    )


def write_report(html: str, path: str | Path) -> Path:
    """Write atomically so a reader (or a web server) never sees a half-written report."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(html)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
