"""The backtest and report tables on the bundled sample, and on a history too short to backtest."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from browser import assert_draws_data, open_report
from conftest import PROJECT_DIR, dbt_runner
from programs import require_program

from clv.generate import generate_transactions, write_transactions
from clv.report import CHARTS, SECTIONS
from clv.run import input_warnings
from clv.scoring import ScoringModel, booster_inputs
from clv.training import MIN_SPEND

[BACKTEST_CHARTS] = [charts for heading, charts in SECTIONS if heading.startswith("Backtest")]


def project_files() -> dict[str, float]:
    """Every file of the project that a build could write (not the venv, caches or git)."""
    skipped = {
        ".venv",
        ".git",
        "target",
        "logs",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
    }
    return {
        str(path): path.stat().st_mtime
        for path in PROJECT_DIR.rglob("*")
        if path.is_file() and not skipped & set(path.relative_to(PROJECT_DIR).parts)
    }


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory):
    """A full build on customers BTYD cannot describe (clv generate --population mixed:
    retail, wholesale on a cycle, one-off projects), the size of the bundled sample."""
    folder = tmp_path_factory.mktemp("sample")
    transactions = folder.parent / "mixed_transactions.csv"
    generated = generate_transactions(customers=3000, seed=42, population="mixed")
    write_transactions(generated.transactions, transactions)
    before = project_files()
    result = dbt_runner(folder)("build", variables={"transactions_path": str(transactions)})
    assert result.returncode == 0, result.output
    # Models build tables, never files: a full build writes the warehouse file, dbt's
    # target/ and logs/, and nothing else, in its own folder or in the project.
    assert sorted(path.name for path in folder.iterdir()) == ["logs", "target", "warehouse.duckdb"]
    assert project_files() == before
    return result, folder


def report_file(result, folder: Path) -> Path:
    """The report the build rendered, as the exporter writes it."""
    [(html,)] = result.query("select html from rpt_html_report")
    path = folder / "report.html"
    path.write_text(html)
    return path


def metrics(result) -> dict[str, dict]:
    rows = result.query("select * from rpt_backtest_metrics")
    names = [column[0] for column in result.query("describe rpt_backtest_metrics")]
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


def test_backtest_beats_the_naive_baseline_on_the_sample(sample_build) -> None:
    result, _ = sample_build
    by_model = metrics(result)
    assert set(by_model) == {"lightgbm", "btyd", "naive"}  # no season applied (test_seasons)
    assert all(row["status"] == "ok" for row in by_model["lightgbm"] and by_model.values())
    model, naive = by_model["lightgbm"], by_model["naive"]
    assert model["mae_expected_spend"] < naive["mae_expected_spend"]
    for level in ("p10", "p50", "p90"):
        assert model[f"pinball_loss_{level}"] < naive[f"pinball_loss_{level}"], level
    assert 0 < model["normalized_gini"] <= 1
    assert 0.5 < model["auc_prob_purchase"] <= 1

    deciles = result.query(
        "select decile, customers, mean_forecast from rpt_backtest_deciles"
        " where model = 'lightgbm' order by decile"
    )
    assert [decile for decile, _, _ in deciles] == list(range(1, 11))
    forecasts = [mean for _, _, mean in deciles]
    assert forecasts == sorted(forecasts, reverse=True)


def test_quantiles_are_calibrated_out_of_time_on_the_sample(sample_build) -> None:
    result, _ = sample_build
    model = metrics(result)["lightgbm"]
    # The backtest's holdout is a smaller sample than CDNOW's: 0.02 either side.
    for level, name in ((0.1, "p10"), (0.5, "p50"), (0.9, "p90")):
        assert model[f"below_rate_{name}"] <= level + 0.02, name
        assert model[f"at_or_below_rate_{name}"] >= level - 0.02, name


def test_the_model_beats_its_btyd_base_on_every_column(sample_build) -> None:
    result, _ = sample_build
    by_model = metrics(result)
    model, btyd = by_model["lightgbm"], by_model["btyd"]
    for lower_is_better in (
        "mae_p50",
        "mean_pinball_loss",
        "rmse_expected_spend",
        "brier_prob_purchase",
    ):
        assert model[lower_is_better] < btyd[lower_is_better], lower_is_better
    assert model["normalized_gini"] > btyd["normalized_gini"]
    # Where BTYD is the wrong model, the quantile boosters are worth it: at least 5% off
    # its pinball loss (measured: 24%).
    assert model["mean_pinball_loss"] <= 0.95 * btyd["mean_pinball_loss"]
    # The level is BTYD's: the same total, so never further from the actual.
    assert model["total_forecast"] == pytest.approx(btyd["total_forecast"], rel=1e-9)
    # Like with like: the baseline's quantiles are its own, not its point forecast.
    [(spread,)] = result.query(
        "select avg(spend_p90 - spend_p10) from backtest_predictions where model = 'btyd'"
    )
    assert spread > 0


def test_the_backtest_names_the_version_it_judges(sample_build) -> None:
    result, _ = sample_build
    # The one this build registered, on every row.
    [(version,)] = result.query("select distinct model_version from backtest_predictions")
    assert [(version,)] == result.query(
        "select model_version from model_registry order by trained_at desc limit 1"
    )


def test_the_reliability_table_bins_every_customer(sample_build) -> None:
    result, _ = sample_build
    rows = result.query(
        "select model, sum(customers), count(*), min(bin), max(bin),"
        " sum(customers * mean_prob_purchase), sum(customers * observed_purchase_rate)"
        " from rpt_backtest_reliability group by model order by model"
    )
    holdout = dict(result.query("select model, count(*) from backtest_predictions group by model"))
    for model, customers, bins, first, last, predicted, bought in rows:
        assert (customers, bins, first, last) == (holdout[model], 10, 1, 10)
        [(mean_prob, buyers)] = result.query(
            "select sum(prob_purchase), sum(case when has_purchase then 1 else 0 end)"
            f" from backtest_predictions where model = '{model}'"
        )
        assert predicted == pytest.approx(mean_prob) and bought == pytest.approx(buyers)
    # The model's probability is closer to what happened than BTYD's, bin by bin on
    # average, and within 0.15 in every bin that holds enough customers to say. (On
    # these customers both run high in the middle bins: measured 0.55 against 0.43 at
    # worst for the model, 0.55 against 0.47 for BTYD.)
    gaps = dict(
        result.query(
            "select model, sum(customers * abs(mean_prob_purchase - observed_purchase_rate))"
            " / sum(customers) from rpt_backtest_reliability group by model"
        )
    )
    assert gaps["lightgbm"] < gaps["btyd"]
    for predicted, observed in result.query(
        "select mean_prob_purchase, observed_purchase_rate"
        " from rpt_backtest_reliability where model = 'lightgbm' and customers >= 100"
    ):
        assert abs(predicted - observed) < 0.15


def test_report_tables_are_filled_and_consistent(sample_build) -> None:
    result, _ = sample_build
    [(customers, total)] = result.query(
        "select count(*), sum(expected_spend) from customer_predictions"
    )
    assert result.query("select customers from rpt_prediction_summary") == [(customers,)]
    [(tier_customers, share)] = result.query(
        "select sum(customers), sum(share_of_total) from rpt_value_tiers"
    )
    assert tier_customers == customers and share == pytest.approx(1.0)
    [(raw,)] = result.query("select row_count from rpt_data_quality where category = 'raw'")
    [(valid_and_rejected,)] = result.query(
        "select sum(row_count) from rpt_data_quality where category != 'raw'"
    )
    assert raw == valid_and_rejected > 0
    [(features, targets)] = result.query(
        "select count(distinct feature), count(distinct target) from rpt_feature_importance"
    )
    # The purchase booster, a spend booster per level of the grid, the expected-spend one.
    assert features > 10 and targets == 5
    assert result.query("select count(*) from rpt_top_customers")[0][0] == 100
    assert result.query("select count(*) from rpt_new_customers")[0][0] > 0
    assert result.query("select count(*) from rpt_cohorts")[0][0] > 12


def test_each_customers_drivers_add_up_to_its_forecast(sample_build) -> None:
    result, _ = sample_build
    with duckdb.connect(str(result.database), read_only=True) as connection:

        def read(sql: str) -> pd.DataFrame:
            return connection.sql(sql).df()

        drivers = read("select * from customer_prediction_drivers order by customer_id, rank")
        forecasts = read("select * from customer_predictions order by customer_id")
        features = read("select * from int_customer_features_as_of_date order by customer_id")
        model = ScoringModel.from_registry(
            read("select * from model_registry"),
            read("select * from btyd_fits"),
            forecasts["model_version"].iloc[0],
        )
    assert (drivers["model_version"] == model.model_version).all()
    base, matrix = booster_inputs(model, features)
    raw = model.expected_spend.predict(matrix, raw_score=True)
    [bias] = set(model.expected_spend.predict(matrix, pred_contrib=True)[:, -1])
    sums = drivers.groupby("customer_id")["contribution"].sum()
    assert list(sums.index) == list(forecasts["customer_id"])
    np.testing.assert_allclose(sums.to_numpy() + bias, raw, rtol=0, atol=1e-6)
    # ... and so, as a factor on BTYD's expected spend, to the customer's expected spend
    # (up to the level every customer shares, which puts the total at BTYD's).
    corrected = np.maximum(base["btyd_expected_spend"], MIN_SPEND) * np.exp(sums.to_numpy() + bias)
    level = forecasts["expected_spend"].sum() / corrected.sum()
    np.testing.assert_allclose(corrected * level, forecasts["expected_spend"], rtol=1e-6)


def test_the_drivers_can_be_turned_off(tmp_path) -> None:
    listed = dbt_runner(tmp_path)(
        "ls", "--resource-type", "model", variables={"prediction_drivers": False}
    )
    assert listed.returncode == 0, listed.output
    assert "clv.customer_predictions" in listed.output
    assert "customer_prediction_drivers" not in listed.output


def test_any_quantile_levels_build_and_show_in_the_reports(tmp_path) -> None:
    """Var quantiles takes any levels in (0, 1): the reports and their tests follow them,
    even without a median."""
    path = tmp_path / "transactions.csv"
    write_transactions(generate_transactions(customers=600, seed=8).transactions, path)
    result = dbt_runner(tmp_path)(
        "build",
        variables={"transactions_path": str(path), "quantiles": [0.05, 0.25, 0.75, 0.95]},
    )
    assert result.returncode == 0, result.output
    levels = ["spend_p5", "spend_p25", "spend_p75", "spend_p95"]
    for table, columns in (
        ("customer_predictions", levels),
        ("rpt_top_customers", levels),
        ("rpt_new_customers", levels),
        ("rpt_prediction_summary", [f"mean_{column}" for column in levels]),
    ):
        names = [row[0] for row in result.query(f"describe {table}")]
        assert [name for name in names if "spend_p" in name] == columns, (table, names)
    report = report_file(result, tmp_path)
    assert "Mean p5 · p25 · p75 · p95" in report.read_text()
    page = open_report(report, tmp_path / "screenshots")
    assert page.errors == []
    intervals = page.charts["forecast-intervals"]
    assert_draws_data(intervals)
    assert "p5 to p95 (90% interval)" in intervals.text


def test_short_history_builds_and_says_why_there_is_no_backtest(tmp_path) -> None:
    end = dt.date(2025, 12, 31)
    path = tmp_path / "short.csv"
    write_transactions(
        generate_transactions(customers=300, seed=5, end_date=end, history_days=100).transactions,
        path,
    )
    result = dbt_runner(tmp_path)(
        "build", variables={"transactions_path": str(path), "horizon_days": 90}
    )
    assert result.returncode == 0, result.output
    statuses = result.query("select distinct status, status_reason from rpt_backtest_metrics")
    assert len(statuses) == 1
    status, reason = statuses[0]
    assert status == "insufficient_history"
    assert "too short for an out-of-time backtest" in reason
    # `clv run` ends with the same reason, not only the report.
    assert input_warnings(result.database, {}) == [
        f"no out-of-time backtest judged this model: t{reason[1:].rstrip('.')}"
    ]
    assert result.query("select count(*) from customer_predictions")[0][0] > 0
    for table in ("rpt_backtest_deciles", "rpt_backtest_reliability"):
        assert result.query(f"select distinct status from {table}") == [("insufficient_history",)]
    page = open_report(report_file(result, tmp_path), tmp_path / "screenshots")
    assert page.errors == []
    for chart in page.charts.values():
        if chart.id in BACKTEST_CHARTS:
            assert "No backtest" in chart.text and "too short for an out-of-time" in chart.text
            assert chart.points == 0
        elif chart.id == "feature-importance":  # 100 days teach the booster nothing
            assert "No splits" in chart.text and chart.points == 0
        elif chart.id == "season":  # the sentence that says why, in the chart's place
            assert "no season learned: the history does not cover a year" in chart.text
            assert chart.points == 0
        elif chart.id != "accuracy-over-time":
            assert_draws_data(chart)


def chromium_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, as Debian's headless Chromium sees it."""
    binary = require_program("chromium")
    completed = subprocess.run(
        [
            binary,
            *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
            *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_html_report_renders_every_chart_in_chromium(sample_build, tmp_path) -> None:
    result, folder = sample_build
    page = open_report(report_file(result, tmp_path), tmp_path / "screenshots")
    assert list(page.charts) == list(CHARTS) and page.errors == []
    for chart in page.charts.values():
        if chart.id == "accuracy-over-time":  # one run, whose horizon has not passed
            assert "Not yet: 0 scoring run(s)" in chart.text
        else:
            assert_draws_data(chart)


def test_docs_site_shows_the_lineage_to_customer_predictions(sample_build, tmp_path) -> None:
    _, folder = sample_build
    result = dbt_runner(folder)(
        "docs",
        "generate",
        "--static",
        variables={"transactions_path": str(folder.parent / "mixed_transactions.csv")},
    )
    assert result.returncode == 0, result.output
    site = folder / "target" / "static_index.html"
    dom = chromium_dom(site.as_uri(), tmp_path / "profile")
    for node in (
        "customer_predictions",
        "model_registry",
        "int_customer_features_as_of_date",
        "stg_transactions__transactions",
        "raw_transactions",
        "redis_live_app",
    ):
        assert node in dom, node
    assert "Where to start" in dom  # the project's overview, not dbt's welcome page
