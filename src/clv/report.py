"""Render the customer-value report: one self-contained HTML file of plotly charts.

plotly.js is embedded once, so the file opens offline with hover, zoom and PNG export;
its Content-Security-Policy forbids the page to fetch anything at all. It is rebuilt from
the rpt_* tables on every run; a missing or empty table degrades to a visible "No data"
message in place of its chart instead of failing the run.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from html import escape
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

CHARTS: tuple[str, ...] = (
    "transactions-over-time",
    "season",
    "order-values",
    "cohorts",
    "forecast-distribution",
    "forecast-intervals",
    "total-forecast",
    "purchase-probability-matrix",
    "decile-calibration",
    "cumulative-gain",
    "interval-coverage",
    "purchase-reliability",
    "buyers-by-frequency",
    "baselines-vs-model",
    "accuracy-over-time",
    "feature-importance",
    "data-quality",
)

SECTIONS = (
    ("Data", CHARTS[:4]),
    ("Forecast", CHARTS[4:8]),
    ("Backtest: the model against BTYD and the naive rate", CHARTS[8:14]),
    ("Production forecasts", CHARTS[14:15]),
    ("Model", CHARTS[15:16]),
    ("Data quality", CHARTS[16:]),
)

BLUE = "#3b6fb6"
ORANGE = "#e08a2c"
GREY = "#8c8c8c"
GREEN = "#2e8b57"
RED = "#c0392b"
LIGHT_BLUE = "#a9c4e8"
DARK_BLUE = "#1d3f73"
MODEL_ORDER = ("lightgbm", "lightgbm_without_season", "btyd", "naive")
MODEL_COLOURS = {"lightgbm": BLUE, "btyd": ORANGE, "naive": GREY}
MODEL_NAMES = {
    "lightgbm": "this model (LightGBM)",
    "lightgbm_without_season": "this model without its seasonal level",
    "btyd": "BTYD",
    "naive": "naive rate",
}
HEAT_SCALE = [
    [0.0, "#f7fbff"],
    [0.25, "#c6dbef"],
    [0.5, "#6baed6"],
    [0.75, "#2171b5"],
    [1.0, "#08306b"],
]
LEVEL_COLOURS = (BLUE, GREEN, ORANGE, RED, GREY)  # quantile levels, lowest first
TOP_FEATURES = 15
IMPORTANCE_TARGET = "expected_spend"  # the booster that ranks the customers
# Modebar: PNG export and zoom; no plotly logo and no link that would leave the page.
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d"]}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)


class _Unavailable(Exception):
    """A chart cannot be drawn; its message is shown in the chart's place."""


@dataclass(frozen=True)
class _Context:
    tables: Mapping[str, pd.DataFrame]
    currency: str | None

    def amount(self, label: str) -> str:
        """An axis or column label for amounts, with the currency when one is set."""
        return f"{label} ({self.currency})" if self.currency else label


@dataclass(frozen=True)
class _Chart:
    figure: go.Figure
    extra_html: str = ""  # tables or notes that belong under the chart


# ---------------------------------------------------------------------------------------------
# Formatting


def _esc(value: object) -> str:
    return escape(str(value), quote=True)


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


def _level_name(suffix: str) -> str:
    return f"p{suffix.replace('_', '.')}"


# ---------------------------------------------------------------------------------------------
# Reading the tables


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


def _model_name(model: str) -> str:
    return MODEL_NAMES.get(model, model)


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


def _backtest_table(ctx: _Context, name: str, columns: Sequence[str]) -> pd.DataFrame:
    """A backtest table; when the backtest did not run, the reason why instead."""
    _backtest_metrics(ctx, required=True)
    return _table(ctx, name, columns)


def _backtest_models(ctx: _Context, frame: pd.DataFrame) -> list[str]:
    """The models of frame that the backtest ran, in the house order; raises when none."""
    metrics = _backtest_metrics(ctx, required=True)
    assert metrics is not None  # required=True raises instead of returning None
    ran = set(metrics["model"].astype(str))
    models = [model for model in _ordered_models(frame["model"].astype(str)) if model in ran]
    if not models:
        raise _Unavailable("No data: no model whose backtest ran has rows here")
    return models


def _quantile_levels(
    columns: Iterable[str], prefix: str = r"(?:at_or_)?below_rate_p"
) -> list[tuple[str, float]]:
    """(suffix, level in 0..1) for every <prefix><suffix> column (below_rate_p10, or
    spend_p10 with prefix 'spend_p'), lowest level first; '2_5' means 2.5%."""
    levels = []
    for column in columns:
        match = re.fullmatch(prefix + r"(.+)", str(column))
        if match:
            try:
                levels.append((match.group(1), float(match.group(1).replace("_", ".")) / 100))
            except ValueError:
                continue
    return sorted(set(levels), key=lambda item: item[1])


# ---------------------------------------------------------------------------------------------
# Figures


def _layout(figure: go.Figure, height: int, legend_y: float, **layout: object) -> go.Figure:
    """The house layout: one font, a legend above the plot, room for axis titles."""
    defaults: dict[str, object] = {
        "height": height,
        "template": "plotly_white",
        "margin": {"l": 70, "r": 20, "t": 40, "b": 50},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif"},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": legend_y, "x": 0},
        "hoverlabel": {"namelength": -1},
    }
    figure.update_layout(**{**defaults, **layout})
    return figure


def _figure(height: int, **layout: object) -> go.Figure:
    return _layout(go.Figure(), height, 1.02, **layout)


def _subplots(height: int, **grid: object) -> go.Figure:
    """Panels with titles above them, so the legend sits higher."""
    figure = make_subplots(**grid)
    return _layout(figure, height, 1.08, margin={"l": 70, "r": 20, "t": 70, "b": 50})


def _histogram(
    frame: pd.DataFrame, count_column: str, x_title: str, what: str, colour: str
) -> go.Figure:
    """Bars over [bin_lower, bin_upper); the open-ended last bin stands apart, labelled."""
    frame = frame.sort_values("bin_lower")
    closed = frame[frame["bin_upper"].notna() & (frame["bin_upper"] > frame["bin_lower"])]
    open_ended = frame.drop(closed.index)
    widths = closed["bin_upper"] - closed["bin_lower"]
    typical = float(widths.median()) if len(widths) else 1.0
    figure = _figure(360, bargap=0.05, showlegend=True)
    figure.add_bar(
        name=f"{what} per bin",
        x=(closed["bin_lower"] + widths / 2).tolist(),
        width=widths.tolist(),
        y=closed[count_column].tolist(),
        customdata=closed[["bin_lower", "bin_upper"]].to_numpy().tolist(),
        hovertemplate="%{customdata[0]:,.2f} to %{customdata[1]:,.2f}: %{y:,} "
        + what
        + "<extra></extra>",
        marker_color=colour,
    )
    for row in open_ended.itertuples():
        # One bin's width past a gap, hatched: it holds every value above the 99th
        # percentile, so its height is not comparable with the bins beside it.
        centre = float(row.bin_lower) + 1.5 * typical
        count = getattr(row, count_column)
        figure.add_bar(
            name=f"open-ended: {_fmt_amount(row.bin_lower)} or more (top 1%)",
            x=[centre],
            width=[typical],
            y=[count],
            hovertemplate=f"{_fmt_amount(row.bin_lower)} or more (open-ended bin, above the "
            f"99th percentile): %{{y:,}} {what}<extra></extra>",
            marker={
                "color": "#ffffff",
                "line": {"color": colour, "width": 1.5},
                "pattern": {"shape": "/", "fgcolor": colour},
            },
        )
        figure.add_annotation(
            x=centre,
            y=count,
            text=f"≥ {_fmt_amount(row.bin_lower)}",
            showarrow=False,
            yshift=10,
            font={"size": 11},
        )
    figure.update_xaxes(title_text=x_title)
    figure.update_yaxes(title_text=what.capitalize())
    return figure


def _chart_transactions(ctx: _Context) -> _Chart:
    name = "rpt_transactions_monthly"
    frame = _table(ctx, name, ["month", "transactions", "customers", "revenue"])
    frame = frame.assign(month=pd.to_datetime(frame["month"], errors="coerce"))
    frame = _numeric(frame.dropna(subset=["month"]), name, ["transactions", "customers", "revenue"])
    frame = frame.sort_values("month")
    partial = (
        frame["is_partial_month"].fillna(False).astype(bool)
        if "is_partial_month" in frame
        else pd.Series(False, index=frame.index)
    )
    labels = [
        f"{month:%b %Y}" + (" (partial)" if p else "")
        for month, p in zip(frame["month"], partial, strict=True)
    ]
    figure = _subplots(
        560,
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=(
            "Transactions and active customers per month",
            ctx.amount("Net revenue per month"),
        ),
    )
    figure.add_bar(
        name="Transactions",
        x=frame["month"],
        y=frame["transactions"],
        customdata=labels,
        marker={
            "color": BLUE,
            "opacity": [0.35 if p else 1.0 for p in partial],
            "pattern": {"shape": ["/" if p else "" for p in partial]},
        },
        hovertemplate="%{customdata}: %{y:,} transactions<extra></extra>",
        row=1,
        col=1,
    )
    figure.add_scatter(
        name="Active customers",
        x=frame["month"],
        y=frame["customers"],
        customdata=labels,
        mode="lines+markers",
        line={"color": ORANGE},
        hovertemplate="%{customdata}: %{y:,} customers<extra></extra>",
        row=1,
        col=1,
    )
    figure.add_scatter(
        name="Net revenue",
        x=frame["month"],
        y=frame["revenue"],
        customdata=labels,
        mode="lines+markers",
        line={"color": GREEN},
        marker={"symbol": ["circle-open" if p else "circle" for p in partial], "size": 8},
        hovertemplate="%{customdata}: %{y:,.2f}<extra></extra>",
        row=2,
        col=1,
    )
    for month in frame.loc[partial, "month"]:
        figure.add_vrect(
            x0=month - pd.Timedelta(days=15),
            x1=month + pd.Timedelta(days=15),
            fillcolor=GREY,
            opacity=0.12,
            line_width=0,
            row="all",
            col=1,
        )
        figure.add_annotation(
            x=month,
            y=float(frame["transactions"].max()),
            text="partial month",
            showarrow=False,
            yanchor="bottom",
            font={"size": 10},
            row=1,
            col=1,
        )
    figure.update_yaxes(title_text="Count per month", row=1, col=1)
    figure.update_yaxes(title_text=ctx.amount("Revenue"), row=2, col=1)
    figure.update_xaxes(title_text="Month", row=2, col=1)
    return _Chart(figure)


def _chart_season(ctx: _Context) -> _Chart:
    summary = _summary_row(ctx)
    if summary is None or _is_missing(summary.get("seasonal_ratios")):
        raise _Unavailable(
            "No data: rpt_prediction_summary holds no season (missing, empty, or a version"
            " from before seasons)"
        )
    ratios = json.loads(summary["seasonal_ratios"])
    if not ratios:
        raise _Unavailable(str(summary.get("season") or "no season learned"))
    horizon = int(summary["horizon_days"])
    starts = [pd.Timestamp(start) for start in ratios]
    labels = [
        f"{start + pd.Timedelta(days=1):%d %b %Y} - {start + pd.Timedelta(days=horizon):%d %b %Y}"
        for start in starts
    ]
    factor = float(summary["seasonal_factor"])
    figure = _figure(360, showlegend=False)
    figure.add_bar(
        x=labels,
        y=list(ratios.values()),
        marker={"color": LIGHT_BLUE},
        hovertemplate="%{x}: actual x%{y:.2f} BTYD's forecast<extra></extra>",
    )
    figure.add_hline(
        y=factor,
        line={"color": BLUE, "width": 3},
        # The total's level: where the thirds depart, each third's is in the sentence below.
        annotation_text=f"the total's level for the horizon: x{factor:.2f} ({len(ratios)} year"
        f"{'s' if len(ratios) > 1 else ''})",
    )
    figure.add_hline(y=1.0, line={"color": GREY, "dash": "dot"}, annotation_text="no season")
    figure.update_yaxes(title_text="Actual over BTYD's forecast", rangemode="tozero")
    figure.update_xaxes(title_text="The horizon's window in earlier years")
    return _Chart(figure, f"<p>{_esc(summary.get('season'))}</p>")


def _chart_order_values(ctx: _Context) -> _Chart:
    name = "rpt_order_value_distribution"
    frame = _table(ctx, name, ["bin_lower", "bin_upper", "orders"])
    frame = _numeric(frame, name, ["bin_lower", "orders"])
    frame["bin_upper"] = pd.to_numeric(frame["bin_upper"], errors="coerce").astype(float)
    return _Chart(_histogram(frame, "orders", ctx.amount("Net order value"), "orders", BLUE))


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
    frame = frame.assign(
        share=frame["active_customers"] / frame["cohort_customers"],
        cohort=frame["cohort_month"].dt.strftime("%b %Y"),
    )
    later = frame.loc[frame["months_since_first_purchase"] >= 1, "share"]
    # Month 0 is 100% by definition; the scale tops out at the highest later share.
    top = float(min(1.0, later.max())) if len(later) and later.max() > 0 else 1.0
    order = frame.sort_values("cohort_month")["cohort"].unique().tolist()
    share = frame.pivot_table(
        index="cohort", columns="months_since_first_purchase", values="share"
    ).reindex(order)
    active = frame.pivot_table(
        index="cohort", columns="months_since_first_purchase", values="active_customers"
    ).reindex(order)
    size = frame.pivot_table(
        index="cohort", columns="months_since_first_purchase", values="cohort_customers"
    ).reindex(order)
    text = share.map(lambda v: "" if _is_missing(v) else f"{v * 100:.0f}")
    figure = _figure(max(320, 22 * len(order) + 120))
    figure.add_heatmap(
        z=share.to_numpy(),
        x=[int(m) for m in share.columns],
        y=order,
        zmin=0,
        zmax=top,
        colorscale=HEAT_SCALE,
        text=text.to_numpy(),
        texttemplate="%{text}" if share.shape[1] <= 30 else None,
        textfont={"size": 9},
        customdata=pd.concat([active, size], axis=1, keys=["a", "s"])
        .to_numpy()
        .reshape(len(order), 2, -1)
        .transpose(0, 2, 1)
        .tolist(),
        hovertemplate="%{y} cohort, month %{x}: %{customdata[0]:,} of %{customdata[1]:,} "
        "active (%{z:.1%})<extra></extra>",
        colorbar={"title": {"text": "Active share"}, "tickformat": ".0%"},
    )
    figure.update_xaxes(
        title_text="Months since first purchase", dtick=1 if share.shape[1] <= 30 else None
    )
    figure.update_yaxes(title_text="Cohort (month of first purchase)", autorange="reversed")
    return _Chart(figure)


def _chart_forecast_distribution(ctx: _Context) -> _Chart:
    name = "rpt_forecast_distribution"
    frame = _table(ctx, name, ["bin_lower", "bin_upper", "customers"])
    frame = _numeric(frame, name, ["bin_lower", "customers"])
    frame["bin_upper"] = pd.to_numeric(frame["bin_upper"], errors="coerce").astype(float)
    summary = _summary_row(ctx)
    horizon = ""
    if summary is not None and not _is_missing(summary.get("horizon_days")):
        horizon = f" over the next {_fmt_int(summary.get('horizon_days'))} days"
    figure = _histogram(
        frame, "customers", ctx.amount(f"Expected spend per customer{horizon}"), "customers", BLUE
    )
    if summary is not None:
        for label, key, colour in (
            ("mean", "mean_expected_spend", RED),
            ("median", "median_expected_spend", GREEN),
        ):
            value = pd.to_numeric(summary.get(key), errors="coerce")
            if not _is_missing(value):
                figure.add_vline(
                    x=float(value),
                    line={"color": colour, "dash": "dash", "width": 1.5},
                    annotation_text=f"{label} {_fmt_amount(value)}",
                    annotation_font_color=colour,
                    annotation_position="top right" if label == "mean" else "top left",
                )
    return _Chart(figure)


def _chart_forecast_intervals(ctx: _Context) -> _Chart:
    name = "rpt_top_customers"
    frame = _table(ctx, name, ["customer_id", "expected_spend"])
    # The levels of var quantiles, as the report's columns name them (p10, p50, p90 by default).
    levels = _quantile_levels(frame.columns, "spend_p")
    if not levels:
        raise _Unavailable(f"No data: table {name} has no spend_p<level> column")
    numbers = ["expected_spend", *(f"spend_p{suffix}" for suffix, _ in levels)]
    frame = _numeric(frame, name, numbers).sort_values("expected_spend", ascending=False).head(20)
    has_prob = "prob_purchase" in frame.columns
    labels = [
        f"{customer} · P(buy) {_fmt_pct(prob, 0)}" if has_prob else str(customer)
        for customer, prob in zip(
            frame["customer_id"],
            frame["prob_purchase"] if has_prob else [None] * len(frame),
            strict=True,
        )
    ]
    figure = _figure(120 + 24 * len(frame), margin={"l": 200, "r": 20, "t": 40, "b": 50})
    (low, low_level), (high, high_level) = levels[0], levels[-1]
    if high_level > low_level:
        figure.add_bar(
            name=f"p{low} to p{high} ({(high_level - low_level) * 100:g}% interval)",
            y=labels,
            base=frame[f"spend_p{low}"],
            x=frame[f"spend_p{high}"] - frame[f"spend_p{low}"],
            orientation="h",
            marker_color=LIGHT_BLUE,
            customdata=frame[[f"spend_p{low}", f"spend_p{high}"]].to_numpy(),
            hovertemplate=f"%{{y}}: p{low} %{{customdata[0]:,.2f}} to p{high}"
            " %{customdata[1]:,.2f}<extra></extra>",
        )
    if "spend_p50" in frame.columns:
        figure.add_scatter(
            name="p50 (median)",
            y=labels,
            x=frame["spend_p50"],
            mode="markers",
            marker={"symbol": "line-ns", "size": 16, "line": {"width": 3, "color": DARK_BLUE}},
            hovertemplate="%{y}: median %{x:,.2f}<extra></extra>",
        )
    figure.add_scatter(
        name="expected spend",
        y=labels,
        x=frame["expected_spend"],
        mode="markers",
        marker={"color": ORANGE, "size": 9},
        hovertemplate="%{y}: expected %{x:,.2f}<extra></extra>",
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(title_text=ctx.amount("Spend over the forecast horizon"))
    return _Chart(figure)


def _chart_total_forecast(ctx: _Context) -> _Chart:
    name = "rpt_forecast_total"
    frame = _table(ctx, name, ["total_expected_spend"])
    levels = sorted(
        (float(match.group(1).replace("_", ".")) / 100, column)
        for column in frame.columns
        if (match := re.fullmatch(r"total_spend_p(.+)", str(column)))
    )
    if len(levels) < 2:
        raise _Unavailable(f"No data: table {name} has fewer than two total_spend_p* columns")
    row = frame.iloc[0]
    total = float(row["total_expected_spend"])
    (low_level, low_column), (high_level, high_column) = levels[0], levels[-1]
    low, high = float(row[low_column]), float(row[high_column])
    bands = [
        (
            f"customers buying independently: p{low_level * 100:g} to p{high_level * 100:g}",
            low,
            high,
            BLUE,
        )
    ]
    try:
        metrics = _backtest_metrics(ctx, required=False)
    except _Unavailable:
        metrics = None
    if metrics is not None and "total_error_pct" in metrics:
        ours = metrics[metrics["model"].astype(str) == "lightgbm"]["total_error_pct"]
        error = float(pd.to_numeric(ours, errors="coerce").iloc[0]) if len(ours) else math.nan
        if math.isfinite(error):
            share = abs(error) / 100
            bands.append(
                (
                    f"± the backtest's total error ({error:+.1f}%)",
                    total * (1 - share),
                    total * (1 + share),
                    ORANGE,
                )
            )
    figure = _figure(
        140 + 50 * len(bands), margin={"l": 320, "r": 30, "t": 40, "b": 50}, showlegend=False
    )
    for label, start, end, colour in bands:
        figure.add_bar(
            y=[label],
            base=[start],
            x=[end - start],
            orientation="h",
            marker_color=colour,
            width=0.5,
            hovertemplate=f"{label}: {_fmt_amount(start)} to {_fmt_amount(end)}<extra></extra>",
        )
    figure.add_vline(
        x=total,
        line={"color": "#1f2328", "width": 2},
        annotation_text=f"expected {_fmt_amount(total)}",
        annotation_position="top",
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(title_text=ctx.amount("Total spend of all customers over the horizon"))
    return _Chart(figure)


def _chart_purchase_matrix(ctx: _Context) -> _Chart:
    name = "rpt_purchase_probability_matrix"
    columns = [
        "purchase_days_from",
        "purchase_days_bucket",
        "recency_days_from",
        "recency_days_bucket",
        "customers",
        "mean_prob_purchase",
    ]
    frame = _table(ctx, name, columns)
    frame = _numeric(
        frame, name, ["purchase_days_from", "recency_days_from", "customers", "mean_prob_purchase"]
    )
    frequency = frame.sort_values("purchase_days_from")["purchase_days_bucket"].unique().tolist()
    recency = frame.sort_values("recency_days_from")["recency_days_bucket"].unique().tolist()
    prob = frame.pivot_table(
        index="purchase_days_bucket", columns="recency_days_bucket", values="mean_prob_purchase"
    ).reindex(index=frequency, columns=recency)
    customers = frame.pivot_table(
        index="purchase_days_bucket", columns="recency_days_bucket", values="customers"
    ).reindex(index=frequency, columns=recency)
    text = prob.map(lambda v: "" if _is_missing(v) else f"{v * 100:.0f}%")
    figure = _figure(380)
    figure.add_heatmap(
        z=prob.to_numpy(),
        x=recency,
        y=frequency,
        zmin=0,
        zmax=1,
        colorscale=HEAT_SCALE,
        text=text.to_numpy(),
        texttemplate="%{text}",
        textfont={"size": 10},
        customdata=customers.to_numpy(),
        hovertemplate="%{y} purchase days, last purchase %{x} days ago: mean P(purchase) "
        "%{z:.1%} over %{customdata:,} customers<extra></extra>",
        colorbar={"title": {"text": "P(purchase)"}, "tickformat": ".0%"},
    )
    figure.update_xaxes(title_text="Days since the last purchase", type="category")
    figure.update_yaxes(title_text="Distinct purchase days", type="category")
    return _Chart(figure)


def _chart_decile_calibration(ctx: _Context) -> _Chart:
    name = "rpt_backtest_deciles"
    frame = _backtest_table(ctx, name, ["model", "decile", "mean_forecast", "mean_actual"])
    frame = _numeric(frame, name, ["decile", "mean_forecast", "mean_actual"])
    models = _backtest_models(ctx, frame)
    figure = _subplots(
        380,
        rows=1,
        cols=len(models),
        horizontal_spacing=0.07,
        subplot_titles=[_model_name(model) for model in models],
    )
    for index, model in enumerate(models, start=1):
        rows = frame[frame["model"].astype(str) == model].sort_values("decile")
        for column, label, colour in (
            ("mean_forecast", "mean forecast", BLUE),
            ("mean_actual", "mean actual", ORANGE),
        ):
            figure.add_bar(
                name=label,
                x=rows["decile"],
                y=rows[column],
                marker_color=colour,
                legendgroup=label,
                showlegend=index == 1,
                hovertemplate=f"{_model_name(model)}, decile %{{x}}: {label} %{{y:,.2f}}"
                "<extra></extra>",
                row=1,
                col=index,
            )
        figure.update_xaxes(title_text="Decile (1 = highest forecast)", dtick=1, row=1, col=index)
    # Each panel keeps its own scale: a weak model's first decile must not flatten the rest;
    # a log scale, one click away, shows the low deciles too.
    every_axis = {f"yaxis{i if i > 1 else ''}.type": "{}" for i in range(1, len(models) + 1)}
    figure.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "x": 1,
                "xanchor": "right",
                "y": 1.2,
                "yanchor": "bottom",
                "buttons": [
                    {
                        "label": scale,
                        "method": "relayout",
                        "args": [{k: v.format(scale) for k, v in every_axis.items()}],
                    }
                    for scale in ("linear", "log")
                ],
            }
        ]
    )
    figure.update_yaxes(title_text=ctx.amount("Mean spend per customer"), row=1, col=1)
    figure.update_layout(barmode="group")
    return _Chart(figure)


def _chart_cumulative_gain(ctx: _Context) -> _Chart:
    name = "rpt_backtest_gain"
    frame = _backtest_table(ctx, name, ["model", "customer_share", "spend_share"])
    frame = _numeric(frame, name, ["customer_share", "spend_share"])
    models = _backtest_models(ctx, frame)
    figure = _figure(420)
    figure.add_scatter(
        name="at random",
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        line={"color": GREY, "dash": "dash", "width": 1},
        hoverinfo="skip",
    )
    for index, model in enumerate(models):
        rows = frame[frame["model"].astype(str) == model].sort_values("customer_share")
        figure.add_scatter(
            name=_model_name(model),
            x=[0.0, *rows["customer_share"]],
            y=[0.0, *rows["spend_share"]],
            mode="lines",
            line={"color": _model_colour(model, index), "width": 2.5},
            hovertemplate=f"{_model_name(model)}: the top %{{x:.0%}} of customers by forecast "
            "made %{y:.1%} of the actual spend<extra></extra>",
        )
    figure.update_xaxes(
        title_text="Customers, highest forecast first", tickformat=".0%", range=[0, 1]
    )
    figure.update_yaxes(title_text="Share of actual spend", tickformat=".0%")
    return _Chart(figure)


def _chart_interval_coverage(ctx: _Context) -> _Chart:
    metrics = _backtest_metrics(ctx, required=True)
    assert metrics is not None
    levels = _quantile_levels(metrics.columns)
    if not levels:
        raise _Unavailable("No data: rpt_backtest_metrics has no below_rate_p* columns")
    columns = [
        f"at_or_below_rate_p{suffix}"
        for suffix, _ in levels
        if f"at_or_below_rate_p{suffix}" in metrics
    ]
    usable = metrics[metrics[columns].apply(pd.to_numeric, errors="coerce").notna().any(axis=1)]
    if usable.empty:
        raise _Unavailable("No data: no backtested model reports quantile hit rates")
    models = _ordered_models(usable["model"].astype(str))
    figure = _figure(440)
    figure.add_scatter(
        name="target (y = x)",
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        line={"color": GREY, "dash": "dash", "width": 1},
        hoverinfo="skip",
    )
    spread = 0.012
    for index, model in enumerate(models):
        row = usable[usable["model"].astype(str) == model].iloc[0]
        colour = _model_colour(model, index)
        offset = (index - (len(models) - 1) / 2) * spread
        xs, ys, hover, verdicts = [], [], [], []
        for suffix, level in levels:
            below = pd.to_numeric(row.get(f"below_rate_p{suffix}"), errors="coerce")
            at_or_below = pd.to_numeric(row.get(f"at_or_below_rate_p{suffix}"), errors="coerce")
            if _is_missing(at_or_below):
                continue
            low = at_or_below if _is_missing(below) else below
            honest = low - 1e-9 <= level <= at_or_below + 1e-9
            verdicts.append(honest)
            text = (
                f"{_model_name(model)}, {_level_name(suffix)}: P(actual < q) {_fmt_pct(low)},"
                f" P(actual ≤ q) {_fmt_pct(at_or_below)}, level {_fmt_pct(level)}: "
                + ("calibrated" if honest else "miscalibrated")
            )
            xs += [level + offset, level + offset, None]
            ys += [low, at_or_below, None]
            hover += [text, text, None]
        figure.add_scatter(
            name=_model_name(model),
            x=xs,
            y=ys,
            mode="lines+markers",
            line={"color": colour, "width": 5},
            marker={"size": 7, "color": colour},
            hovertext=hover,
            hoverinfo="text",
        )
    figure.add_scatter(
        name="level",
        x=[level for _, level in levels],
        y=[level for _, level in levels],
        mode="markers+text",
        text=[_level_name(suffix) for suffix, _ in levels],
        textposition="top center",
        textfont={"size": 12},
        marker={
            "symbol": "line-ew",
            "size": 30,
            "color": "#1f2328",
            "line": {"width": 2.5, "color": "#1f2328"},
        },
        hoverinfo="skip",
    )
    figure.update_xaxes(title_text="Quantile level", tickformat=".0%", range=[-0.04, 1.04])
    figure.update_yaxes(
        title_text="Share of customers below the quantile",
        tickformat=".0%",
        range=[0, 1],
    )
    return _Chart(figure)


def _chart_reliability(ctx: _Context) -> _Chart:
    name = "rpt_backtest_reliability"
    frame = _backtest_table(
        ctx, name, ["model", "bin", "customers", "mean_prob_purchase", "observed_purchase_rate"]
    )
    frame = _numeric(
        frame, name, ["bin", "customers", "mean_prob_purchase", "observed_purchase_rate"]
    )
    frame = frame[frame["customers"] > 0]
    models = _backtest_models(ctx, frame)
    metrics = _backtest_metrics(ctx, required=True)
    assert metrics is not None
    brier = {}
    if "brier_prob_purchase" in metrics:
        brier = dict(zip(metrics["model"].astype(str), metrics["brier_prob_purchase"], strict=True))
    largest = float(frame["customers"].max())
    figure = _figure(440)
    figure.add_scatter(
        name="perfectly calibrated",
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        line={"color": GREY, "dash": "dash", "width": 1},
        hoverinfo="skip",
    )
    for index, model in enumerate(models):
        rows = frame[frame["model"].astype(str) == model].sort_values("bin")
        score = brier.get(model)
        label = _model_name(model) + ("" if _is_missing(score) else f" (Brier {float(score):.4f})")
        figure.add_scatter(
            name=label,
            x=rows["mean_prob_purchase"],
            y=rows["observed_purchase_rate"],
            mode="lines+markers",
            line={"color": _model_colour(model, index)},
            marker={"size": [6 + 12 * math.sqrt(c / largest) for c in rows["customers"]]},
            customdata=rows["customers"],
            hovertemplate=f"{_model_name(model)}: predicted %{{x:.1%}}, observed %{{y:.1%}}, "
            "%{customdata:,} customers<extra></extra>",
        )
    figure.update_xaxes(
        title_text="Predicted P(purchase), mean per bin", tickformat=".0%", range=[0, 1]
    )
    figure.update_yaxes(title_text="Observed purchase rate", tickformat=".0%", range=[0, 1])
    return _Chart(figure)


def _chart_buyers_by_frequency(ctx: _Context) -> _Chart:
    name = "rpt_backtest_buyers_by_frequency"
    frame = _backtest_table(
        ctx,
        name,
        [
            "model",
            "purchase_days_from",
            "purchase_days_bucket",
            "customers",
            "expected_buyers",
            "actual_buyers",
        ],
    )
    frame = _numeric(
        frame, name, ["purchase_days_from", "customers", "expected_buyers", "actual_buyers"]
    )
    models = _backtest_models(ctx, frame)
    buckets = frame.sort_values("purchase_days_from")["purchase_days_bucket"].unique().tolist()
    actual = frame.groupby("purchase_days_bucket")[["actual_buyers", "customers"]].first()
    actual = actual.reindex(buckets)
    figure = _figure(400, barmode="group")
    figure.add_bar(
        name="actual buyers",
        x=buckets,
        y=actual["actual_buyers"],
        marker_color="#1f2328",
        customdata=actual["customers"],
        hovertemplate="%{x} purchase days: %{y:,} of %{customdata:,} customers bought"
        "<extra></extra>",
    )
    for index, model in enumerate(models):
        rows = frame[frame["model"].astype(str) == model].set_index("purchase_days_bucket")
        rows = rows.reindex(buckets)
        figure.add_bar(
            name=f"expected: {_model_name(model)}",
            x=buckets,
            y=rows["expected_buyers"],
            marker_color=_model_colour(model, index),
            hovertemplate=f"{_model_name(model)}, %{{x}} purchase days: %{{y:,.1f}} expected "
            "buyers<extra></extra>",
        )
    figure.update_xaxes(
        title_text="Distinct purchase days before the backtest date", type="category"
    )
    figure.update_yaxes(title_text="Buyers in the horizon")
    return _Chart(figure)


BASELINE_METRICS = (
    ("mae_p50", "MAE of the median (lower is better)", "amount"),
    ("mean_pinball_loss", "Mean pinball loss (lower is better)", "amount"),
    ("normalized_gini", "Normalized Gini (higher is better)", "plain"),
    ("total_error_pct", "Total error, % of actual (0 is best)", "plain"),
)


def _chart_baselines(ctx: _Context) -> _Chart:
    metrics = _backtest_metrics(ctx, required=True)
    assert metrics is not None
    models = _ordered_models(metrics["model"].astype(str))
    panels = [(c, t, k) for c, t, k in BASELINE_METRICS if c in metrics.columns]
    if not panels:
        raise _Unavailable("No data: rpt_backtest_metrics has none of the compared metrics")
    titles = [ctx.amount(t) if k == "amount" else t for _, t, k in panels]
    figure = _subplots(520, rows=2, cols=2, subplot_titles=titles, vertical_spacing=0.16)
    by_model = metrics.set_index(metrics["model"].astype(str))
    for index, (column, _, _) in enumerate(panels):
        values = [float(pd.to_numeric(by_model.at[m, column], errors="coerce")) for m in models]
        figure.add_bar(
            x=[_model_name(m) for m in models],
            y=values,
            marker_color=[_model_colour(m, i) for i, m in enumerate(models)],
            text=[f"{v:,.4g}" if math.isfinite(v) else "n/a" for v in values],
            textposition="outside",
            cliponaxis=False,
            showlegend=False,
            hovertemplate="%{x}: %{y:,.4g}<extra></extra>",
            row=index // 2 + 1,
            col=index % 2 + 1,
        )
    return _Chart(figure, _metrics_table(ctx.tables["rpt_backtest_metrics"]))


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
    runs = [f"{day:%Y-%m-%d}" for day in frame["as_of_date"]]
    figure = _subplots(
        560,
        rows=2,
        cols=1,
        vertical_spacing=0.16,
        subplot_titles=(
            "Each quantile: P(actual < q) to P(actual ≤ q), per run",
            ctx.amount("Total forecast and actual spend"),
        ),
    )
    for index, (suffix, level) in enumerate(levels):
        colour = LEVEL_COLOURS[index % len(LEVEL_COLOURS)]
        xs, ys = [], []
        for position, row in enumerate(frame.itertuples(index=False)):
            at_or_below = getattr(row, f"at_or_below_rate_p{suffix}")
            below = getattr(row, f"below_rate_p{suffix}", None)
            low = at_or_below if _is_missing(below) else float(below)
            x = position + (index - (len(levels) - 1) / 2) * 0.12
            xs += [x, x, None]
            ys += [low, at_or_below, None]
        figure.add_scatter(
            name=_level_name(suffix),
            x=xs,
            y=ys,
            mode="lines+markers",
            line={"color": colour, "width": 6},
            marker={"color": colour, "size": 6},
            hovertemplate=f"{_level_name(suffix)}: %{{y:.1%}} (level {level:.0%})<extra></extra>",
            legendgroup=suffix,
            row=1,
            col=1,
        )
        figure.add_hline(y=level, line={"color": colour, "dash": "dot", "width": 1}, row=1, col=1)
    figure.update_xaxes(tickvals=list(range(len(runs))), ticktext=runs, row=1, col=1)
    figure.update_yaxes(
        title_text="Share of customers", tickformat=".0%", range=[0, 1], row=1, col=1
    )
    totals = [("total_forecast", "forecast", BLUE), ("total_actual", "actual", ORANGE)]
    seasonal = "seasonal_factor" in frame and "total_forecast_without_season" in frame
    if seasonal and (pd.to_numeric(frame["seasonal_factor"], errors="coerce") != 1).any():
        totals.insert(1, ("total_forecast_without_season", "forecast without season", LIGHT_BLUE))
    for column, label, colour in totals:
        figure.add_bar(
            name=f"total {label}",
            x=runs,
            y=frame[column],
            marker_color=colour,
            hovertemplate=f"%{{x}}: {label} %{{y:,.0f}}<extra></extra>",
            row=2,
            col=1,
        )
    figure.update_xaxes(title_text="Scoring run (as_of_date)", type="category", row=2, col=1)
    figure.update_yaxes(title_text=ctx.amount("Spend"), row=2, col=1)
    figure.update_layout(barmode="group")
    return _Chart(figure)


def _chart_feature_importance(ctx: _Context) -> _Chart:
    name = "rpt_feature_importance"
    frame = _table(ctx, name, ["target", "feature", "gain_share"])
    frame = _numeric(frame, name, ["gain_share"])
    targets = frame["target"].astype(str)
    target = IMPORTANCE_TARGET if (targets == IMPORTANCE_TARGET).any() else sorted(targets)[0]
    frame = frame[targets == target]
    if not (frame["gain_share"] > 0).any():
        raise _Unavailable(
            "No splits: the expected-spend booster learnt nothing from this history (every"
            " feature's gain is 0), so the expected spend is BTYD's own"
        )
    has_contribution = (
        "mean_abs_contribution" in frame and frame["mean_abs_contribution"].notna().any()
    )
    key = "mean_abs_contribution" if has_contribution else "gain_share"
    top = frame.sort_values(key, ascending=False).head(TOP_FEATURES)
    features = top["feature"].astype(str).tolist()
    figure = _subplots(
        120 + 24 * len(top),
        rows=1,
        cols=2 if has_contribution else 1,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=(
            ["Mean |contribution| to today's forecasts (log)", "Share of split gain"]
            if has_contribution
            else ["Share of split gain"]
        ),
    )
    figure.update_layout(margin={"l": 220, "r": 20, "t": 60, "b": 40}, showlegend=False)
    if has_contribution:
        figure.add_bar(
            y=features,
            x=top["mean_abs_contribution"],
            orientation="h",
            marker_color=BLUE,
            hovertemplate="%{y}: moves log expected spend by %{x:.3f} on average<extra></extra>",
            row=1,
            col=1,
        )
    figure.add_bar(
        y=features,
        x=top["gain_share"],
        orientation="h",
        marker_color=ORANGE,
        hovertemplate="%{y}: %{x:.1%} of the split gain<extra></extra>",
        row=1,
        col=2 if has_contribution else 1,
    )
    figure.update_xaxes(tickformat=".0%", row=1, col=2 if has_contribution else 1)
    figure.update_yaxes(autorange="reversed")
    return _Chart(figure)


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
    figure = _figure(
        120 + 26 * len(labels), margin={"l": 220, "r": 40, "t": 20, "b": 50}, showlegend=False
    )
    figure.add_bar(
        y=labels,
        x=values,
        orientation="h",
        marker_color=[GREEN] + [RED] * len(reasons),
        text=[f"{_fmt_int(v)} ({_fmt_pct(v / base, 2)})" for v in values],
        textposition="outside",
        cliponaxis=False,
        hovertemplate="%{y}: %{x:,} rows<extra></extra>",
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(title_text="Rows")
    return _Chart(figure, _quality_numbers(raw, valid, rejected_total, (category == "raw").any()))


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


SPECS: dict[str, _Spec] = {
    "transactions-over-time": _Spec(
        "Transactions over time",
        "Monthly transactions and distinct customers (top) and net revenue (bottom). A month "
        "the data covers only in part is shaded, hatched and labelled: its dip is the data's "
        "edge, not a collapse. Seasonality and growth here are what the forecast extrapolates.",
        _chart_transactions,
    ),
    "season": _Spec(
        "The season the forecast looks into",
        "The horizon's calendar window in each earlier year the history covers: actual spend "
        "there over BTYD's forecast made at its start (BTYD sees no calendar). Their geometric "
        "mean (the line) is the seasonal level applied to this horizon's total and quantiles; "
        "where the thirds of the customers' spend by order value departed from it in those "
        "years, each third's spend is scaled by its own level (the sentence below). Assumed: "
        "the season repeats yearly; a one-off event a year ago is read as season too. Turn "
        "it off with the var seasonal_level.",
        _chart_season,
    ),
    "order-values": _Spec(
        "Order values",
        "Purchases per band of net order value. The hatched bar set apart on the right is "
        "open-ended: every order above the 99th percentile, however large, so its height is "
        "not comparable with the bands beside it.",
        _chart_order_values,
    ),
    "cohorts": _Spec(
        "Cohort activity",
        "Each row is the cohort of customers whose first purchase fell in that month; each cell "
        "the share of them who bought again N months later (hover for counts). Month 0 is 100% "
        "by definition, so the colour scale tops out at the highest later share.",
        _chart_cohorts,
    ),
    "forecast-distribution": _Spec(
        "Forecast distribution",
        "Customers per band of expected spend over the horizon; dashed lines mark the mean and "
        "the median. The hatched bar set apart on the right is open-ended (above the 99th "
        "percentile).",
        _chart_forecast_distribution,
    ),
    "forecast-intervals": _Spec(
        "Top customers: forecast intervals",
        "The customers with the highest expected spend. Bars span the lowest to the highest "
        "spend quantile of var quantiles (p10 to p90 by default, an 80% interval), the dark "
        "tick is the median and the dot the expected value; P(buy) is the probability of any "
        "purchase in the horizon.",
        _chart_forecast_intervals,
    ),
    "total-forecast": _Spec(
        "The total forecast, with its uncertainty",
        "The total expected spend of all customers (black line). Blue: the interval the "
        "customers' own forecasts imply if each buys, or not, independently of the others; it "
        "narrows as customers are added. It leaves out whatever moves everyone at once (a "
        "season, a price change, a recession): orange shows a move as large as the backtest's "
        "total error, a measure of how far a whole window has moved before.",
        _chart_total_forecast,
    ),
    "purchase-probability-matrix": _Spec(
        "Purchase probability by frequency and recency",
        "Mean forecast probability of buying in the horizon for the customers in each cell, by "
        "how many distinct days they have bought on (rows) and how long ago they last bought "
        "(columns); hover for the number of customers. BTYD's probability-alive matrix, read "
        "off this model: frequent, recent buyers (top left) are the likeliest to buy, and the "
        "chance fades to the right as their last purchase recedes.",
        _chart_purchase_matrix,
    ),
    "decile-calibration": _Spec(
        "Decile calibration",
        "Backtest customers ranked by each model's forecast and split into ten equal groups; per "
        "group the mean forecast beside the mean spend actually observed. Each panel has its own "
        "scale. Calibrated models have bars of equal height; steeply falling bars mean good "
        "ranking.",
        _chart_decile_calibration,
    ),
    "cumulative-gain": _Spec(
        "Cumulative gain",
        "Customers ranked by each model's forecast, highest first: the share of all actual "
        "spend made by the top x% of them. The higher the curve, the better a campaign aimed "
        "at the top of the list; ranking at random follows the diagonal.",
        _chart_cumulative_gain,
    ),
    "interval-coverage": _Spec(
        "Quantile calibration",
        "For each predicted spend quantile and model, a bar from the share of customers whose "
        "actual spend fell strictly below it to the share at or below it (many spend exactly 0, "
        "so the two differ). A quantile is calibrated when its level (black tick) lies on its "
        "bar. Each model's quantiles come from its own predictive distribution.",
        _chart_interval_coverage,
    ),
    "purchase-reliability": _Spec(
        "Purchase probability: predicted against observed",
        "Customers binned by their predicted probability of buying in the horizon (ten bins of "
        "0.1); each dot is a bin's mean prediction against the share that actually bought, "
        "sized by its customers. A calibrated probability keeps to the dashed diagonal; the "
        "Brier score (lower is better) sums up calibration and sharpness.",
        _chart_reliability,
    ),
    "buyers-by-frequency": _Spec(
        "Expected against actual buyers by purchase frequency",
        "Backtest customers grouped by how many distinct days they had bought on; per group "
        "how many bought in the horizon (black) and how many each model expected (the sum of "
        "its purchase probabilities). A model that is right for one-time buyers and regulars "
        "alike matches the black bar in every group.",
        _chart_buyers_by_frequency,
    ),
    "baselines-vs-model": _Spec(
        "Model against baselines",
        "Backtest metrics of this model against BTYD (BG/NBD + Gamma-Gamma) and the naive "
        "past rate on the same customers and horizon; total error is summed forecast minus "
        "summed actual. Every metric is in the table below.",
        _chart_baselines,
    ),
    "accuracy-over-time": _Spec(
        "Forecast accuracy over time",
        "Every scoring run whose horizon has passed, judged against what its customers then "
        "spent (rpt_forecast_accuracy_over_time). Top: for each quantile, a bar from the share "
        "of customers below it to the share at or below it; the quantile was honest in a run "
        "when its dotted level crosses its bar. Bottom: each run's total forecast beside the "
        "total actually spent.",
        _chart_accuracy_over_time,
    ),
    "feature-importance": _Spec(
        "What drives the forecasts",
        f"The top {TOP_FEATURES} features of the expected-spend booster: how far each "
        "moves today's forecasts on average (blue: the mean absolute LightGBM contribution, "
        "in log expected spend on top of BTYD's, so 0.1 is about 10%, over a sample of the "
        "customers scored; each customer's own "
        "top three drivers are in customer_prediction_drivers) and its share of the split "
        "gain in training (orange).",
        _chart_feature_importance,
    ),
    "data-quality": _Spec(
        "Data quality",
        "Input transaction rows that passed validation and those rejected, by reason, with "
        "the share of all raw rows.",
        _chart_data_quality,
    ),
}


def _figure_html(chart_id: str, spec: _Spec, ctx: _Context) -> str:
    try:
        chart = spec.build(ctx)
        # "</" never closes the script element early, whatever a label holds.
        data = chart.figure.to_json().replace("</", "<\\/")
        body = (
            f'<div class="plot" id="plot-{chart_id}"></div>'
            f'<script type="application/json" class="figure" data-target="plot-{chart_id}">'
            f"{data}</script>{chart.extra_html}"
        )
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
    levels = [suffix for suffix, _ in _quantile_levels(summary.index, "mean_spend_p")]
    cards = [
        ("Customers scored", _fmt_int(summary.get("customers"))),
        (ctx.amount("Total expected spend"), _fmt_amount(summary.get("total_expected_spend"))),
        (
            "Mean / median per customer",
            f"{_fmt_amount(summary.get('mean_expected_spend'))} / "
            f"{_fmt_amount(summary.get('median_expected_spend'))}",
        ),
        (
            "Mean " + " · ".join(f"p{suffix}" for suffix in levels),
            " · ".join(_fmt_amount(summary.get(f"mean_spend_p{suffix}")) for suffix in levels),
        ),
        ("Mean purchase probability", _fmt_pct(summary.get("mean_prob_purchase"))),
        ("Forecast as of", _fmt_date(summary.get("as_of_date"))),
        ("Horizon", f"{_fmt_int(summary.get('horizon_days'))} days"),
        ("Model version", _fmt_value(summary.get("model_version"))),
        ("Spend given a purchase", _fmt_value(summary.get("spend_model"))),
        ("Quantiles calibrated", _fmt_value(summary.get("calibration"))),
        ("Season", _fmt_value(summary.get("season"))),
    ]
    items = "".join(
        f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div></div>'
        for k, v in cards
    )
    return f'<div class="cards">{items}</div>{_backtest_banner(ctx)}'


BANNER_METRICS = (
    ("normalized_gini", "Gini", "higher is better", _fmt_value),
    ("total_error_pct", "total error", "0 is best", lambda v: f"{float(v):+.1f}%"),
    ("mae_p50", "MAE of the median", "lower is better", _fmt_value),
    ("mean_pinball_loss", "mean pinball loss", "lower is better", _fmt_value),
    ("brier_prob_purchase", "Brier", "lower is better", _fmt_value),
)


def _backtest_banner(ctx: _Context) -> str:
    """The model beside BTYD and the naive rate on the same backtest customers."""
    try:
        metrics = _backtest_metrics(ctx, required=False)
    except _Unavailable as unavailable:
        return f'<p class="no-data">{_esc(unavailable)}</p>'
    if metrics is None:
        return ""
    models = _ordered_models(metrics["model"].astype(str))
    rows = metrics.set_index(metrics["model"].astype(str))
    shown = [m for m in BANNER_METRICS if m[0] in rows.columns]
    head = "".join(
        f"<th>{_esc(label)}<br><small>{_esc(better)}</small></th>" for _, label, better, _ in shown
    )
    body = "".join(
        f"<tr><th>{_esc(_model_name(model))}</th>"
        + "".join(
            f"<td>{_esc('–' if _is_missing(rows.at[model, key]) else fmt(rows.at[model, key]))}"
            "</td>"
            for key, _, _, fmt in shown
        )
        + "</tr>"
        for model in models
    )
    first = rows.iloc[0]
    facts = (
        f"Backtest at {_fmt_date(first.get('backtest_as_of_date'))}, the same "
        f"{_fmt_int(first.get('customers'))} customers and {_fmt_int(first.get('horizon_days'))}"
        "-day horizon for every model"
    )
    return (
        f'<div class="banner"><p>{_esc(facts)}:</p><table class="metrics banner-table">'
        f"<thead><tr><th>model</th>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


STYLE = """
:root{color-scheme:light}
body{margin:0;background:#f4f5f7;color:#1f2328;font:15px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:980px;margin:0 auto;padding:24px 20px 60px}
h1{font-size:28px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 10px}
h3{font-size:17px;margin:0 0 8px}
.meta{color:#57606a;margin:0 0 18px}
nav{font-size:13px;margin:0 0 18px}nav a{color:#3b6fb6;margin-right:12px;white-space:nowrap}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.card{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:10px 12px}
.card .k{font-size:12px;color:#57606a}.card .v{font-size:18px;font-weight:600;
overflow-wrap:anywhere}
.banner{background:#eef4fb;border-left:4px solid #3b6fb6;padding:8px 12px;margin:14px 0 0}
.banner p{margin:0}
figure.chart{background:#fff;border:1px solid #d8dee4;border-radius:8px;margin:0 0 18px;
padding:16px 18px 12px}
figcaption{font-size:13px;color:#57606a;margin-top:8px}
.no-data{background:#fff5e0;border:1px solid #e3b341;border-radius:6px;padding:14px 16px;
font-weight:600;color:#7a4d00;margin:10px 0}
table.metrics{border-collapse:collapse;font-size:12.5px;margin-top:12px;width:100%}
table.metrics caption{text-align:left;font-weight:600;margin-bottom:4px}
table.metrics th,table.metrics td{border-bottom:1px solid #e3e3e3;padding:3px 8px;
text-align:right;font-variant-numeric:tabular-nums}
table.metrics th:first-child{text-align:left;font-weight:500;color:#57606a}
table.quality{width:auto}
@media (max-width:700px){.cards{grid-template-columns:repeat(2,1fr)}}
"""

# Draws every figure once plotly.js has loaded; document.body.dataset.charts says when
# all are drawn (the tests wait for it).
DRAW = """
Promise.all(Array.from(document.querySelectorAll('script.figure'), function (spec) {
  var figure = JSON.parse(spec.textContent);
  return Plotly.newPlot(spec.dataset.target, figure.data, figure.layout, CONFIG);
})).then(function (drawn) { document.body.dataset.charts = String(drawn.length); });
"""


@cache
def _plotly_js() -> str:
    return get_plotlyjs()


def render_report(
    tables: Mapping[str, pd.DataFrame],
    *,
    title: str = "Customer value forecast",
    currency: str | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The whole report as one HTML document; tables are keyed by rpt_* model name.

    currency labels amounts (e.g. "EUR"); without it amounts carry no unit.
    """
    ctx = _Context(tables, currency or None)
    stamp = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M %Z").strip()
    nav = " ".join(f'<a href="#chart-{c}">{_esc(SPECS[c].title)}</a>' for c in CHARTS)
    sections = "".join(
        f"<section><h2>{_esc(heading)}</h2>"
        + "".join(_figure_html(chart_id, SPECS[chart_id], ctx) for chart_id in chart_ids)
        + "</section>"
        for heading, chart_ids in SECTIONS
    )
    units = f" · amounts in {_esc(currency)}" if currency else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body><main>"
        f'<h1>{_esc(title)}</h1><p class="meta">Generated {_esc(stamp)}{units}</p>'
        f"<nav>{nav}</nav>{_summary_cards(ctx)}{sections}</main>"
        f"<script>{_plotly_js()}</script>"
        f"<script>var CONFIG = {json.dumps(PLOT_CONFIG)};{DRAW}</script>"
        "</body></html>\n"
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
