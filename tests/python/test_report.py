"""The HTML report: renders every chart, opens offline and survives missing backtests.

Rendering is checked in real headless Chromium, because an SVG that is well-formed text can
still draw nothing in a browser.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clv.report import CHARTS, render_report, write_report

CHROMIUM = Path("/usr/bin/chromium")
DRAWN = {"rect", "path", "circle", "line", "polyline", "polygon"}
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
                "model_version": "20240701T063000-<b>a1b2</b>",
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
        "rpt_top_customers": top,
        "rpt_backtest_deciles": deciles,
        "rpt_backtest_metrics": metrics,
        "rpt_backtest_reliability": reliability,
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
        "interval_coverage": 0.78 if model == "lightgbm" else None,
        "interval_coverage_buyers": 0.74 if model == "lightgbm" else None,
    }
    rates = {"2_5": (0.0, 0.31), "10": (0.0, 0.33), "50": (0.47, 0.52), "90": (0.86, 0.86)}
    for suffix, (below, at_or_below) in rates.items():
        with_quantiles = model == "lightgbm"
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


def chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install chromium` to test the report")
    profile = tempfile.mkdtemp(prefix="clv-report-chromium-")
    try:
        return subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class FigureCensus(HTMLParser):
    """Per figure id: how many <svg> and drawn SVG elements it holds, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.depth = 0
        self.tags: dict[str, Counter[str]] = {}
        self.text: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "figure" and "chart" in (attributes.get("class") or "").split():
            self.current = (attributes.get("id") or "").removeprefix("chart-")
            self.tags[self.current] = Counter()
            self.text[self.current] = ""
        elif self.current is not None:
            self.tags[self.current][tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.text[self.current] += data


def census(html: str) -> FigureCensus:
    parser = FigureCensus()
    parser.feed(html)
    return parser


def png_pixels_vary(png: bytes) -> tuple[int, int, bool]:
    """Width, height and whether the image is not one flat colour (decoded with the stdlib)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, width, height = 8, b"", 0, 0
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        data = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", data[:8])
        elif kind == b"IDAT":
            idat += data
        position += 12 + length
    raw = zlib.decompress(idat)
    # Filtered scanlines of a flat image are nearly all one byte; a drawn page is not.
    counts = Counter(raw[::7])
    dominant_share = counts.most_common(1)[0][1] / sum(counts.values())
    return width, height, len(counts) > 32 and dominant_share < 0.98


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    html = render_report(report_tables(), currency="EUR", generated_at=GENERATED_AT)
    return write_report(html, tmp_path_factory.mktemp("report") / "nested" / "report.html")


def test_every_chart_draws_in_chromium(report_file: Path) -> None:
    dom = chromium("--dump-dom", report_file.as_uri()).stdout
    figures = census(dom)
    assert list(figures.tags) == list(CHARTS)
    for chart in CHARTS:
        tags = figures.tags[chart]
        assert tags["svg"] >= 1, f"{chart} has no <svg>"
        assert sum(tags[t] for t in DRAWN) > 0, f"{chart} draws nothing"
        assert "No data" not in figures.text[chart], figures.text[chart]
        assert tags["figcaption"] == 1
    # Quantile levels come from the column names, "2_5" meaning the 2.5% quantile.
    assert all(f"p{level}" in figures.text["interval-coverage"] for level in ("2.5", "10", "90"))


def test_screenshot_is_not_blank(report_file: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", report_file.as_uri())
    width, height, varied = png_pixels_vary(screenshot.read_bytes())
    assert (width, height) == (1280, 2400)
    assert varied, "screenshot is a single colour"


def test_report_is_self_contained_and_escaped(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    assert not re.search(r"https?://", html)
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.IGNORECASE)
    assert "url(" not in html.replace("url(#", "")  # only in-document gradient references
    assert "<b>a1b2</b>" not in html and "&lt;b&gt;a1b2&lt;/b&gt;" in html
    assert "EUR" in html and "Customer value forecast" in html
    assert len(html.encode()) < 400_000
    assert not list(report_file.parent.glob(".*.tmp")), "temporary file left behind"


def test_insufficient_history_shows_the_reason() -> None:
    tables = insufficient_history(report_tables())
    html = render_report(tables, generated_at=GENERATED_AT)
    figures = census(html)
    for chart in (
        "decile-calibration",
        "interval-coverage",
        "baselines-vs-model",
        "purchase-reliability",
    ):
        assert "No backtest: history of 120 days is shorter" in figures.text[chart]
    assert figures.tags["forecast-distribution"]["svg"] == 1
    assert "currency units" in html


def test_accuracy_over_time_waits_for_two_runs() -> None:
    tables = report_tables()
    runs = tables["rpt_forecast_accuracy_over_time"]
    one_run = {**tables, "rpt_forecast_accuracy_over_time": runs[:1]}
    figures = census(render_report(one_run, generated_at=GENERATED_AT))
    assert "Not yet: 1 scoring run(s)" in figures.text["accuracy-over-time"]
    figures = census(render_report(tables, generated_at=GENERATED_AT))
    text = figures.text["accuracy-over-time"]
    assert "2024-06-30" in text and "p90" in text and "Total forecast and actual" in text


def test_empty_and_missing_tables_render_messages(tmp_path: Path) -> None:
    empty = {name: frame.iloc[0:0] for name, frame in report_tables().items()}
    for tables in (empty, {}):
        html = render_report(tables, generated_at=GENERATED_AT)
        figures = census(html)
        assert list(figures.tags) == list(CHARTS)
        for chart in CHARTS:
            # No run's horizon has passed yet is the normal state of a first build.
            expected = "Not yet" if (chart, tables) == ("accuracy-over-time", empty) else "No data"
            assert expected in figures.text[chart], (chart, figures.text[chart])
            assert figures.tags[chart]["svg"] == 0
    path = write_report(html, tmp_path / "empty.html")
    dom = chromium("--dump-dom", path.as_uri()).stdout
    assert dom.count('class="no-data"') >= len(CHARTS)
