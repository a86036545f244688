"""The HTML report: renders every chart, opens offline and survives missing backtests.

Rendering is checked in real headless Chromium, because a figure that is well-formed JSON
can still draw nothing in a browser.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import Page, assert_draws_data, open_report

from clv.report import CHARTS, render_report, write_report

GENERATED_AT = datetime(2024, 7, 1, 6, 30, tzinfo=UTC)


def report_tables(seed: int = 7) -> dict[str, pd.DataFrame]:
    """Small but realistic versions of every rpt_* table."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2022-07-01", "2024-06-01", freq="MS")
    transactions = (800 + 40 * np.arange(len(months)) + rng.integers(-90, 90, len(months))).astype(
        int
    )
    monthly = pd.DataFrame(
        {
            "month": months.date,
            "transactions": transactions,
            "customers": (transactions * 0.7).astype(int),
            "revenue": transactions * rng.uniform(55, 70, len(months)),
            "is_partial_month": [True] + [False] * (len(months) - 2) + [True],
        }
    )
    edges = np.arange(0, 420, 20.0)
    order_values = pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "orders": (
                4000 * np.exp(-edges[:-1] / 60) + rng.integers(0, 30, len(edges) - 1)
            ).astype(int),
        }
    )
    # The last bin is open-ended, as the SQL writes it: everything above the 99th percentile.
    order_values.loc[order_values.index[-1], ["bin_upper", "orders"]] = [None, 350]
    cohort_rows = []
    for i, cohort in enumerate(months[:18]):
        size = int(rng.integers(150, 400))
        for offset in range(len(months) - i):
            share = 1.0 if offset == 0 else 0.32 * np.exp(-offset / 9) + rng.uniform(0, 0.03)
            cohort_rows.append((cohort.date(), offset, int(size * share), size))
    cohorts = pd.DataFrame(
        cohort_rows,
        columns=[
            "cohort_month",
            "months_since_first_purchase",
            "active_customers",
            "cohort_customers",
        ],
    )
    spend_edges = np.arange(0, 1050, 50.0)
    forecast = pd.DataFrame(
        {
            "bin_lower": spend_edges[:-1],
            "bin_upper": spend_edges[1:],
            "customers": (3000 * np.exp(-spend_edges[:-1] / 150)).astype(int),
        }
    )
    forecast.loc[forecast.index[-1], ["bin_upper", "customers"]] = [None, 120]
    summary = pd.DataFrame(
        [
            {
                "customers": 12_345,
                "total_expected_spend": 2_345_678.9,
                "mean_expected_spend": 190.01,
                "median_expected_spend": 120.5,
                "mean_spend_p10": 12.0,
                "mean_spend_p50": 130.0,
                "mean_spend_p90": 420.0,
                "mean_prob_purchase": 0.61,
                "as_of_date": date(2024, 6, 30),
                "horizon_days": 90,
                "seasonal_factor": 1.8,
                "seasonal_ratios": '{"2022-06-30": 1.7, "2023-06-30": 1.9}',
                "season": "x1.80 on BTYD's level: actual spend over BTYD's forecast in the"
                " same 90 days of 2 earlier years (2022 x1.70, 2023 x1.90)",
                "model_version": "20240701T063000-<b>a1b2</b>",
            }
        ]
    )
    total = pd.DataFrame(
        [
            {
                "total_expected_spend": 2_345_678.9,
                "total_sd": 25_000.0,
                "total_spend_p10": 2_313_640.0,
                "total_spend_p50": 2_345_678.9,
                "total_spend_p90": 2_377_717.8,
            }
        ]
    )
    expected = np.sort(rng.uniform(900, 4000, 20))[::-1]
    top = pd.DataFrame(
        {
            "customer_id": [f"C{100_000 + i}" for i in range(20)],
            "expected_spend": expected,
            "spend_p10": expected * 0.35,
            "spend_p50": expected * 0.9,
            "spend_p90": expected * 1.8,
            "prob_purchase": rng.uniform(0.8, 0.99, 20),
        }
    )
    decile_rows = []
    for model, noise in (("lightgbm", 0.1), ("btyd", 0.25), ("naive", 0.5)):
        for decile in range(1, 11):
            actual = 900 * np.exp(-(decile - 1) / 2.2)
            decile_rows.append((model, decile, actual * (1 + rng.uniform(-noise, noise)), actual))
    deciles = pd.DataFrame(decile_rows, columns=["model", "decile", "mean_forecast", "mean_actual"])
    metrics = pd.DataFrame([_metrics_row(model) for model in ("lightgbm", "btyd", "naive")])
    importance = pd.DataFrame(
        [
            (target, f"feature_{name}", gain, 0.0)
            for target in ("expected_spend", "prob_purchase")
            for name, gain in zip(
                ["recency_days", "frequency_90d", "monetary_mean", "tenure_days", "btyd_spend"]
                + [f"extra_{i}" for i in range(15)],
                np.sort(rng.uniform(10, 1000, 20))[::-1],
                strict=True,
            )
        ],
        columns=["target", "feature", "gain", "gain_share"],
    )
    importance["gain_share"] = importance["gain"] / importance.groupby("target")["gain"].transform(
        "sum"
    )
    importance["mean_abs_contribution"] = np.where(
        importance["target"] == "expected_spend", importance["gain_share"] * 2.5, np.nan
    )
    reliability = pd.DataFrame(
        [
            (model, b, 100 + 40 * b, (b - 0.5) / 10, (b - 0.5) / 10 + shift)
            for model, shift in (("lightgbm", 0.01), ("btyd", -0.03), ("naive", -0.2))
            for b in range(1, 11)
        ],
        columns=["model", "bin", "customers", "mean_prob_purchase", "observed_purchase_rate"],
    ).assign(observed_purchase_rate=lambda f: f["observed_purchase_rate"].clip(0, 1))
    accuracy = pd.DataFrame(
        {
            "as_of_date": [date(2024, 3, 31), date(2024, 6, 30), date(2024, 9, 30)],
            "model_version": ["m1", "m1", "m2"],
            "total_forecast": [410_000.0, 455_000.0, 470_000.0],
            "total_actual": [398_000.0, 470_000.0, 452_000.0],
            "seasonal_factor": [1.0, 1.0, 1.25],
            "total_forecast_without_season": [410_000.0, 455_000.0, 376_000.0],
            **{
                f"at_or_below_rate_p{suffix}": rates
                for suffix, rates in (
                    ("10", [0.66, 0.64, 0.67]),
                    ("50", [0.74, 0.71, 0.73]),
                    ("90", [0.91, 0.88, 0.90]),
                )
            },
            **{f"below_rate_p{suffix}": [0.0, 0.0, 0.0] for suffix in ("10", "50", "90")},
        }
    )
    gain = pd.DataFrame(
        [
            (model, step, step / 100, (step / 100) ** power)
            for model, power in (("lightgbm", 0.3), ("btyd", 0.35), ("naive", 0.5))
            for step in range(1, 101)
        ],
        columns=["model", "percentile", "customer_share", "spend_share"],
    )
    buckets = [(0, "0"), (1, "1"), (2, "2"), (3, "3"), (4, "4-5"), (6, "6-9"), (10, "10+")]
    buyers = pd.DataFrame(
        [
            (model, low, label, 500, 40 + 30 * low * factor, 40 + 31 * low)
            for model, factor in (("lightgbm", 1.0), ("btyd", 1.1), ("naive", 2.0))
            for low, label in buckets
        ],
        columns=[
            "model",
            "purchase_days_from",
            "purchase_days_bucket",
            "customers",
            "expected_buyers",
            "actual_buyers",
        ],
    )
    recency = [(0, "0-29"), (30, "30-59"), (90, "90-179"), (365, "365+"), (-1, "no purchase")]
    matrix = pd.DataFrame(
        [
            (low, label, days, name, 20 + low, min(0.95, 0.2 + 0.1 * low) * np.exp(-days / 200))
            for low, label in buckets
            for days, name in recency
            if not (days == -1 and low > 0)
        ],
        columns=[
            "purchase_days_from",
            "purchase_days_bucket",
            "recency_days_from",
            "recency_days_bucket",
            "customers",
            "mean_prob_purchase",
        ],
    )
    quality = pd.DataFrame(
        {
            "category": ["raw", "valid", "rejected", "rejected", "rejected"],
            "rejection_reason": [None, None, "negative_amount", "missing_customer_id", "bad_date"],
            "rows": [100_000, 99_120, 500, 300, 80],
        }
    )
    return {
        "rpt_transactions_monthly": monthly,
        "rpt_order_value_distribution": order_values,
        "rpt_cohorts": cohorts,
        "rpt_forecast_distribution": forecast,
        "rpt_prediction_summary": summary,
        "rpt_forecast_total": total,
        "rpt_top_customers": top,
        "rpt_backtest_deciles": deciles,
        "rpt_backtest_metrics": metrics,
        "rpt_backtest_reliability": reliability,
        "rpt_backtest_gain": gain,
        "rpt_backtest_buyers_by_frequency": buyers,
        "rpt_purchase_probability_matrix": matrix,
        "rpt_forecast_accuracy_over_time": accuracy,
        "rpt_feature_importance": importance,
        "rpt_data_quality": quality,
    }


def _metrics_row(model: str) -> dict[str, object]:
    quality = {"lightgbm": 1.0, "btyd": 0.8, "naive": 0.5}[model]
    row: dict[str, object] = {
        "model": model,
        "status": "ok",
        "status_reason": "",
        "backtest_as_of_date": date(2024, 3, 31),
        "horizon_days": 90,
        "customers": 11_800,
        "mae_expected_spend": 150 / quality,
        "rmse_expected_spend": 320 / quality,
        "normalized_gini": 0.72 * quality,
        "spearman": 0.61 * quality,
        "top_decile_capture": 0.45 * quality,
        "total_error_pct": -3.5 / quality,
        "auc_prob_purchase": 0.5 + 0.3 * quality,
        "brier_prob_purchase": 0.2 / quality,
        "mae_p50": 48 / quality,
        "mean_pinball_loss": 16 / quality,
        "interval_coverage": 0.78 if model == "lightgbm" else None,
        "interval_coverage_buyers": 0.74 if model == "lightgbm" else None,
    }
    rates = {"2_5": (0.0, 0.31), "10": (0.0, 0.33), "50": (0.47, 0.52), "90": (0.86, 0.86)}
    for suffix, (below, at_or_below) in rates.items():
        with_quantiles = model != "naive" or suffix != "2_5"
        row[f"pinball_loss_p{suffix}"] = 12.5 if with_quantiles else None
        row[f"below_rate_p{suffix}"] = below if with_quantiles else None
        row[f"at_or_below_rate_p{suffix}"] = at_or_below if with_quantiles else None
    return row


def insufficient_history(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    reason = "history of 120 days is shorter than the 455 days a backtest needs"
    metrics = tables["rpt_backtest_metrics"].copy()
    metrics["status"] = "insufficient_history"
    metrics["status_reason"] = reason
    for column in metrics.columns:
        if column not in {"model", "status", "status_reason"}:
            metrics[column] = None
    return {
        **tables,
        "rpt_backtest_metrics": metrics,
        "rpt_backtest_deciles": tables["rpt_backtest_deciles"].iloc[0:0],
    }


class FigureText(HTMLParser):
    """Per figure id: its text (the figure's JSON included) and whether it holds a plot."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.text: dict[str, str] = {}
        self.plots: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "figure" and "chart" in classes:
            self.current = (attributes.get("id") or "").removeprefix("chart-")
            self.text[self.current] = ""
            self.plots[self.current] = 0
        elif self.current is not None and tag == "div" and "plot" in classes:
            self.plots[self.current] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.text[self.current] += data


def figure_text(html: str) -> FigureText:
    parser = FigureText()
    parser.feed(html)
    return parser


def numbers(values: list | dict) -> list[float]:
    """A trace's values as plotly wrote them: a list, or a typed array in base64."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"]).tolist()
    return list(values)


def figures(html: str) -> dict[str, dict]:
    """Each chart's plotly figure, as the page hands it to plotly.js."""
    pattern = r'<script type="application/json" class="figure" data-target="plot-([^"]+)">'
    return {
        chart: json.loads(spec.replace("<\\/", "</"))
        for chart, spec in re.findall(pattern + "(.*?)</script>", html, re.DOTALL)
    }


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    html = render_report(report_tables(), currency="EUR", generated_at=GENERATED_AT)
    return write_report(html, tmp_path_factory.mktemp("report") / "nested" / "report.html")


@pytest.fixture(scope="module")
def rendered(report_file: Path) -> Page:
    return open_report(report_file, report_file.parent / "screenshots")


def test_every_chart_draws_its_data_in_chromium(rendered: Page) -> None:
    assert list(rendered.charts) == list(CHARTS)
    for chart in rendered.charts.values():
        assert_draws_data(chart)
    # Quantile levels come from the column names, "2_5" meaning the 2.5% quantile.
    text = rendered.charts["interval-coverage"].text
    assert all(f"p{level}" in text for level in ("2.5", "10", "90"))


def test_report_opens_offline_and_fetches_nothing(rendered: Page, report_file: Path) -> None:
    assert set(rendered.requests) == {report_file.as_uri()}, rendered.requests
    assert rendered.errors == []
    html = report_file.read_text(encoding="utf-8")
    # The page itself forbids any fetch, whatever a library inside it would try.
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"<(link|img|iframe)\\b|<script[^>]*\\bsrc=", html, re.IGNORECASE)
    assert html.count("<script>") == 2  # plotly.js once, then the figures are drawn
    assert len(html.encode()) < 6_000_000
    assert not list(report_file.parent.glob(".*.tmp")), "temporary file left behind"


def test_labels_are_escaped_and_amounts_carry_the_currency(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    assert "<b>a1b2</b>" not in html and "&lt;b&gt;a1b2&lt;/b&gt;" in html
    assert "amounts in EUR" in html and "Customer value forecast" in html
    titles = json.dumps(figures(html)["order-values"]["layout"]["xaxis"]["title"])
    assert "Net order value (EUR)" in titles
    plain = render_report(report_tables(), generated_at=GENERATED_AT)
    title = figures(plain)["order-values"]["layout"]["xaxis"]["title"]["text"]
    assert "amounts in" not in plain and title == "Net order value"


def test_open_ended_bins_and_partial_months_are_marked(report_file: Path) -> None:
    charts = figures(report_file.read_text(encoding="utf-8"))
    tables = report_tables()
    for chart in ("order-values", "forecast-distribution"):
        closed, open_ended = charts[chart]["data"][:2]
        assert closed["name"].endswith("per bin")
        assert open_ended["name"].startswith("open-ended:") and "or more" in open_ended["name"]
        assert open_ended["marker"]["pattern"]["shape"] == "/"
        assert "99th percentile" in open_ended["hovertemplate"]
    # The open bin sits past the last closed one, never overlapping it.
    edges = tables["rpt_order_value_distribution"]
    [x] = charts["order-values"]["data"][1]["x"]
    assert x - 10 > edges["bin_upper"].max() == edges["bin_lower"].max()
    transactions = charts["transactions-over-time"]
    partial = [a["text"] for a in transactions["layout"]["annotations"] if "partial" in a["text"]]
    assert len(partial) == 2  # the first and the last month


def test_each_decile_panel_has_its_own_scale(report_file: Path) -> None:
    layout = figures(report_file.read_text(encoding="utf-8"))["decile-calibration"]["layout"]
    axes = [layout[name] for name in ("yaxis", "yaxis2", "yaxis3")]
    assert not any("matches" in axis for axis in axes)


def test_the_banner_sets_the_model_beside_its_baselines(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    banner = html[html.index('<div class="banner">') : html.index("</table></div>")]
    for model in ("this model (LightGBM)", "BTYD", "naive rate"):
        assert model in banner
    # Each model's Gini on the same backtest rows (0.72 times its quality in the tables).
    for gini in ("0.72", "0.576", "0.36"):
        assert f"<td>{gini}</td>" in banner
    assert "the same 11,800 customers" in banner


def test_insufficient_history_shows_the_reason() -> None:
    tables = insufficient_history(report_tables())
    html = render_report(tables, generated_at=GENERATED_AT)
    text = figure_text(html)
    for chart in (
        "decile-calibration",
        "cumulative-gain",
        "interval-coverage",
        "purchase-reliability",
        "buyers-by-frequency",
        "baselines-vs-model",
    ):
        assert "No backtest: history of 120 days is shorter" in text.text[chart], chart
        assert text.plots[chart] == 0
    assert text.plots["forecast-distribution"] == 1


def test_accuracy_over_time_waits_for_two_runs() -> None:
    tables = report_tables()
    runs = tables["rpt_forecast_accuracy_over_time"]
    one_run = {**tables, "rpt_forecast_accuracy_over_time": runs[:1]}
    text = figure_text(render_report(one_run, generated_at=GENERATED_AT))
    assert "Not yet: 1 scoring run(s)" in text.text["accuracy-over-time"]
    chart = figures(render_report(tables, generated_at=GENERATED_AT))["accuracy-over-time"]
    names = {trace.get("name") for trace in chart["data"]}
    assert {"p10", "p50", "p90", "total forecast", "total actual"} <= names
    assert chart["layout"]["xaxis"]["ticktext"] == ["2024-03-31", "2024-06-30", "2024-09-30"]
    # A run with a seasonal level shows its total without it too.
    [without] = [
        trace for trace in chart["data"] if trace.get("name") == "total forecast without season"
    ]
    assert numbers(without["y"])[-1] == 376_000.0


def test_the_season_chart_draws_each_earlier_year_and_says_why_when_there_is_none() -> None:
    tables = report_tables()
    chart = figures(render_report(tables, generated_at=GENERATED_AT))["season"]
    assert numbers(chart["data"][0]["y"]) == [1.7, 1.9]
    assert [shape["y0"] for shape in chart["layout"]["shapes"]] == [1.8, 1.0]
    summary = tables["rpt_prediction_summary"].assign(
        seasonal_factor=1.0, seasonal_ratios="{}", season="no season learned: too short"
    )
    html = render_report({**tables, "rpt_prediction_summary": summary}, generated_at=GENERATED_AT)
    text = figure_text(html)
    assert "no season learned: too short" in text.text["season"]


def test_empty_and_missing_tables_render_messages(tmp_path: Path) -> None:
    empty = {name: frame.iloc[0:0] for name, frame in report_tables().items()}
    for tables in (empty, {}):
        html = render_report(tables, generated_at=GENERATED_AT)
        text = figure_text(html)
        assert list(text.text) == list(CHARTS)
        for chart in CHARTS:
            # No run's horizon has passed yet is the normal state of a first build.
            expected = "Not yet" if (chart, tables) == ("accuracy-over-time", empty) else "No data"
            assert expected in text.text[chart], (chart, text.text[chart])
            assert text.plots[chart] == 0
    page = open_report(write_report(html, tmp_path / "empty.html"))
    assert page.errors == [] and all(chart.points == 0 for chart in page.charts.values())
